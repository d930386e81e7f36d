"""The pipelines: one frame pair (``static``), a cine pair over the heartbeat (``dynamic``),
an input folder to a result folder (``workflow``), the bundled demo (``demo``) and the
training of the learned ghost score, which needs the whole static pipeline
(``ghost_training``). The top layer: it imports every package below it, none of them
imports it."""
