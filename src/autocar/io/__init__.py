"""Input/output: case folders, results, DICOM X-ray angiography, meshes and trees."""
