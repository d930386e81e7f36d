/* autocar report viewer (plain JavaScript, no library, works offline).
 *
 * Reads the JSON embedded in <script id="autocar-data"> (built by
 * autocar.report.html.report_payload) and draws:
 *   - the 3D centre lines as depth-sorted, shaded tubes on a Canvas 2D
 *     (orthographic; rotation starts from view A's detector axes);
 *   - each angiogram with the centre lines whose 2D positions were computed
 *     in Python with the exact C-arm projection (no geometry here);
 *   - legend, tables and the diameter profile of the selected segment.
 * Test hook: window.autocarViewer (frame, numFrames, setFrame, highlight,
 * highlighted, sceneSignature, ...).
 */
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("autocar-data").textContent);
  var T = data.numFrames;
  var BG = "#0a0d12";
  var ACCENT = "#ffd166";
  var ACCENT_RGB = [255, 209, 102];
  var STENOSIS = "#ff5d5d";
  var FPS = 8;

  var state = { frame: 0, highlighted: null, playing: false, overlay: true, timer: null };
  var lastSignature = "";
  var dirty3d = true;

  // ------------------------------------------------------------ segments
  var NAMED_COLOURS = {
    LM: "#f4d35e", LAD: "#ff7b54", LCX: "#4cc9f0", RCA: "#f78fb3", D1: "#9bd770", D2: "#43c59e",
    D3: "#2ec4b6", OM1: "#b388eb", OM2: "#8e9bff", OM3: "#6c8cff", RI: "#ffb86b", AM: "#f9c74f",
    PDA: "#ff9f1c", PLV: "#7fb7be", SEP: "#c8b6ff", CONUS: "#e5989b"
  };
  var PALETTE = ["#4cc9f0", "#ff7b54", "#9bd770", "#b388eb", "#f9c74f", "#43c59e", "#f78fb3",
    "#8e9bff", "#ffb86b", "#2ec4b6", "#e5989b", "#c8b6ff"];

  var segById = {};
  var segIds = [];
  data.segments.forEach(function (s, k) {
    var base = String(s.name).split(/[\s(]/)[0].toUpperCase();
    s.color = NAMED_COLOURS[base] || PALETTE[k % PALETTE.length];
    s.rgb = hexToRgb(s.color);
    segById[s.id] = s;
    segIds.push(s.id);
  });
  var stenosesBySeg = {};
  data.stenoses.forEach(function (st) {
    if (st.segment !== null && st.segment !== undefined) {
      (stenosesBySeg[st.segment] = stenosesBySeg[st.segment] || []).push(st);
    }
  });
  var GREY = hexToRgb("#9aa4af");
  var edgeSegment = data.edgeSegment;
  var hiEdge = new Uint8Array(data.edges.length);

  function hexToRgb(hex) {
    var v = parseInt(hex.slice(1), 16);
    return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
  }

  function rgbString(rgb, f, alpha) {
    var r = Math.min(255, Math.round(rgb[0] * f));
    var g = Math.min(255, Math.round(rgb[1] * f));
    var b = Math.min(255, Math.round(rgb[2] * f));
    return alpha === undefined ? "rgb(" + r + "," + g + "," + b + ")" : "rgba(" + r + "," + g + "," + b + "," + alpha + ")";
  }

  function edgeRgb(e, same) {
    var sid = same ? edgeSegment[e] : -1;
    var s = sid >= 0 ? segById[sid] : null;
    return s ? s.rgb : GREY;
  }

  function frameEdges(f) { return f.edges || data.edges; }
  function frameRadius(f) { return f.radius || data.radius; }

  // --------------------------------------------------------------- format
  function fmt(x, digits) {
    if (x === null || x === undefined || !isFinite(x)) { return "\u2014"; }
    var s = Number(x).toFixed(digits === undefined ? 1 : digits);
    return Number(s) === 0 ? s.replace("-", "") : s;  // -0.04 reads "0.0", not "-0.0"
  }

  function poseText(primary, secondary) {
    if (primary === null || secondary === null || primary === undefined || secondary === undefined) { return "\u2014"; }
    return (primary >= 0 ? "LAO " : "RAO ") + Math.abs(primary).toFixed(0) + " / " +
      (secondary >= 0 ? "CRA " : "CAU ") + Math.abs(secondary).toFixed(0);
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) { Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); }); }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  // --------------------------------------------------------- canvas sizing
  function fitCanvas(canvas) {
    var dpr = window.devicePixelRatio || 1;
    var w = Math.max(1, Math.round(canvas.clientWidth * dpr));
    var h = Math.max(1, Math.round(canvas.clientHeight * dpr));
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    return dpr;
  }

  // ------------------------------------------------------------ 3D panel
  var canvas3d = document.getElementById("canvas-3d");
  var ctx3d = canvas3d.getContext("2d");
  var cam = {};
  var screen = { x: null, y: null, z: null, w: null, frame: -1 };

  function resetCamera() {
    var a = data.initialAxes;
    cam.R = [a[0].slice(), a[1].slice(), a[2].slice()];
    cam.zoom = 1;
    cam.panX = 0;
    cam.panY = 0;
    // Fit the tree of every frame as seen from view A: pan (screen mm) to the
    // middle of its screen bounding box and zoom so it fills ~82% of the panel.
    var lo = [Infinity, Infinity], hi = [-Infinity, -Infinity], R = cam.R, c = data.center;
    data.frames.forEach(function (f) {
      for (var i = 0; i < f.xyz.length; i += 3) {
        var dx = f.xyz[i] - c[0], dy = f.xyz[i + 1] - c[1], dz = f.xyz[i + 2] - c[2];
        var u = R[0][0] * dx + R[0][1] * dy + R[0][2] * dz, v = R[1][0] * dx + R[1][1] * dy + R[1][2] * dz;
        lo[0] = Math.min(lo[0], u); hi[0] = Math.max(hi[0], u);
        lo[1] = Math.min(lo[1], v); hi[1] = Math.max(hi[1], v);
      }
    });
    var span = Math.max(hi[0] - lo[0], hi[1] - lo[1], 1e-6);
    cam.zoom = Math.min(20, Math.max(0.2, 0.82 * data.extent / (0.46 * span)));
    cam.panX = -(lo[0] + hi[0]) / 2;
    cam.panY = -(lo[1] + hi[1]) / 2;
    dirty3d = true;
  }

  function rotate(dxRad, dyRad) {
    // Rotate about the screen y axis (horizontal drag) then the screen x axis
    // (vertical drag): R <- Rx(dy) Ry(dx) R, rows of R = screen x, y, towards viewer.
    var R = cam.R, c = Math.cos(dxRad), s = Math.sin(dxRad), i;
    var r0 = [], r1 = [], r2 = [];
    for (i = 0; i < 3; i++) {
      r0[i] = c * R[0][i] + s * R[2][i];
      r2[i] = -s * R[0][i] + c * R[2][i];
    }
    c = Math.cos(dyRad); s = Math.sin(dyRad);
    var q1 = [], q2 = [];
    for (i = 0; i < 3; i++) {
      q1[i] = c * R[1][i] + s * r2[i];
      q2[i] = -s * R[1][i] + c * r2[i];
    }
    r1 = q1; r2 = q2;
    cam.R = orthonormalise([r0, r1, r2]);
    dirty3d = true;
  }

  function orthonormalise(R) {
    // Gram-Schmidt on the first two rows; the third keeps its handedness
    // (view axes are left-handed, u x v = -d).
    var a = R[0], b = R[1], c = R[2];
    var na = Math.hypot(a[0], a[1], a[2]);
    a = [a[0] / na, a[1] / na, a[2] / na];
    var d = a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    b = [b[0] - d * a[0], b[1] - d * a[1], b[2] - d * a[2]];
    var nb = Math.hypot(b[0], b[1], b[2]);
    b = [b[0] / nb, b[1] / nb, b[2] / nb];
    var x = [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
    var sign = (x[0] * c[0] + x[1] * c[1] + x[2] * c[2]) >= 0 ? 1 : -1;
    return [a, b, [sign * x[0], sign * x[1], sign * x[2]]];
  }

  function project3d(f, W, H, dpr) {
    var xyz = f.xyz, n = xyz.length / 3, R = cam.R, c = data.center;
    var s = 0.46 * Math.min(W, H) / data.extent * cam.zoom;
    var X = new Float64Array(n), Y = new Float64Array(n), Z = new Float64Array(n);
    for (var i = 0; i < n; i++) {
      var dx = xyz[3 * i] - c[0], dy = xyz[3 * i + 1] - c[1], dz = xyz[3 * i + 2] - c[2];
      X[i] = W / 2 + s * (cam.panX + R[0][0] * dx + R[0][1] * dy + R[0][2] * dz);
      Y[i] = H / 2 + s * (cam.panY + R[1][0] * dx + R[1][1] * dy + R[1][2] * dz);
      Z[i] = R[2][0] * dx + R[2][1] * dy + R[2][2] * dz;
    }
    return { x: X, y: Y, z: Z, scale: s };
  }

  function hashInit() { return 2166136261; }
  function hashMix(h, v) {
    h ^= (v | 0);
    return Math.imul(h, 16777619) >>> 0;
  }

  function draw3d() {
    var dpr = fitCanvas(canvas3d);
    var W = canvas3d.width, H = canvas3d.height, ctx = ctx3d;
    var g = ctx.createRadialGradient(W / 2, H / 2, 0, W / 2, H / 2, Math.max(W, H) * 0.75);
    g.addColorStop(0, "#151b24");
    g.addColorStop(1, BG);
    ctx.fillStyle = g;
    ctx.fillRect(0, 0, W, H);

    var f = data.frames[state.frame];
    var same = f.sameTopology;
    var edges = frameEdges(f), radius = frameRadius(f);
    var p = project3d(f, W, H, dpr);
    var ext = data.extent;
    var hasHi = state.highlighted !== null && same;
    var order = new Array(edges.length);
    var depth = new Float64Array(edges.length);
    for (var e = 0; e < edges.length; e++) {
      order[e] = e;
      depth[e] = p.z[edges[e][0]] + p.z[edges[e][1]];
    }
    order.sort(function (a, b) { return depth[a] - depth[b]; });

    var h = hashInit();
    var widths = new Float64Array(edges.length);
    ctx.lineJoin = "round";
    for (var k = 0; k < order.length; k++) {
      e = order[k];
      var i = edges[e][0], j = edges[e][1];
      var w = Math.max(1.4 * dpr, (radius[i] + radius[j]) * p.scale);
      widths[e] = w;
      var t = Math.min(1, Math.max(0, (depth[e] / 2 + ext) / (2 * ext)));
      var shade = 0.38 + 0.62 * t;
      var hi = hasHi && hiEdge[e] === 1;
      var rgb = edgeRgb(e, same);
      ctx.globalAlpha = hasHi && !hi ? 0.3 : 1;
      // Outline (butt caps so the joints of a vessel show no seams).
      ctx.lineCap = "butt";
      ctx.strokeStyle = "rgba(0,0,0,0.6)";
      ctx.lineWidth = w + 2 * dpr;
      ctx.beginPath(); ctx.moveTo(p.x[i], p.y[i]); ctx.lineTo(p.x[j], p.y[j]); ctx.stroke();
      // Body, shaded by depth (nearer is brighter).
      ctx.lineCap = "round";
      ctx.strokeStyle = rgbString(hi ? ACCENT_RGB : rgb, shade);
      ctx.lineWidth = w;
      ctx.beginPath(); ctx.moveTo(p.x[i], p.y[i]); ctx.lineTo(p.x[j], p.y[j]); ctx.stroke();
      // Specular stripe: light from the upper left.
      if (w > 3 * dpr) {
        var off = -0.17 * w;
        ctx.strokeStyle = rgbString([255, 255, 255], 1, 0.22 + 0.25 * t);
        ctx.lineWidth = 0.28 * w;
        ctx.beginPath(); ctx.moveTo(p.x[i] + off, p.y[i] + off); ctx.lineTo(p.x[j] + off, p.y[j] + off); ctx.stroke();
      }
      h = hashMix(h, Math.round(p.x[i] * 10));
      h = hashMix(h, Math.round(p.y[i] * 10));
      h = hashMix(h, Math.round(p.x[j] * 10));
      h = hashMix(h, Math.round(p.y[j] * 10));
      h = hashMix(h, Math.round(w * 10));
      h = hashMix(h, hi ? 1 : 0);
    }
    ctx.globalAlpha = 1;
    h = hashMix(h, hasHi ? state.highlighted + 7 : -1);

    if (same) { drawStenosisMarkers(ctx, p.x, p.y, dpr, 1); }
    drawGizmo(ctx, dpr, H);
    drawScaleBar(ctx, dpr, W, H, p.scale);
    ctx.fillStyle = "rgba(230,237,243,0.85)";
    ctx.font = (12 * dpr) + "px sans-serif";
    ctx.textBaseline = "top";
    ctx.fillText("Frame " + (state.frame + 1) + " / " + T, 10 * dpr, 9 * dpr);

    screen = { x: p.x, y: p.y, z: p.z, w: widths, frame: state.frame, dpr: dpr };
    lastSignature = ("00000000" + h.toString(16)).slice(-8);
    dirty3d = false;
  }

  function drawStenosisMarkers(ctx, X, Y, dpr, scale) {
    data.stenoses.forEach(function (st) {
      if (st.node === null || st.node === undefined) { return; }
      var x = X[st.node], y = Y[st.node];
      if (x === null || y === null || x === undefined || !isFinite(x) || !isFinite(y)) { return; }
      var r = 9 * dpr * scale;
      ctx.lineWidth = 2 * dpr;
      ctx.strokeStyle = "rgba(0,0,0,0.7)";
      ctx.beginPath(); ctx.arc(x, y, r + 1.5 * dpr, 0, 2 * Math.PI); ctx.stroke();
      ctx.strokeStyle = STENOSIS;
      ctx.beginPath(); ctx.arc(x, y, r, 0, 2 * Math.PI); ctx.stroke();
      var label = st.diameter_stenosis_percent !== null ? fmt(st.diameter_stenosis_percent, 0) + "%" : "stenosis";
      ctx.font = "600 " + (11 * dpr) + "px sans-serif";
      ctx.textBaseline = "middle";
      ctx.lineWidth = 3 * dpr;
      ctx.strokeStyle = "rgba(0,0,0,0.8)";
      ctx.strokeText(label, x + r + 4 * dpr, y - r);
      ctx.fillStyle = STENOSIS;
      ctx.fillText(label, x + r + 4 * dpr, y - r);
    });
  }

  function drawGizmo(ctx, dpr, H) {
    // Patient axes (DICOM LPS): L = +x, P = +y, H = +z.
    var ox = 34 * dpr, oy = H - 34 * dpr, len = 22 * dpr, R = cam.R;
    var axes = [["L", 0, "#ff8a80"], ["P", 1, "#9be39b"], ["H", 2, "#82b1ff"]];
    axes.sort(function (a, b) { return R[2][a[1]] - R[2][b[1]]; });
    ctx.font = "600 " + (11 * dpr) + "px sans-serif";
    ctx.textBaseline = "middle";
    ctx.textAlign = "center";
    axes.forEach(function (a) {
      var x = ox + len * R[0][a[1]], y = oy + len * R[1][a[1]];
      ctx.strokeStyle = a[2];
      ctx.lineWidth = 2 * dpr;
      ctx.beginPath(); ctx.moveTo(ox, oy); ctx.lineTo(x, y); ctx.stroke();
      ctx.fillStyle = a[2];
      ctx.fillText(a[0], ox + 1.45 * len * R[0][a[1]], oy + 1.45 * len * R[1][a[1]]);
    });
    ctx.textAlign = "start";
  }

  function drawScaleBar(ctx, dpr, W, H, pxPerMm) {
    var choices = [1, 2, 5, 10, 20, 50, 100], mm = choices[0];
    for (var i = 0; i < choices.length; i++) {
      if (choices[i] * pxPerMm <= 0.25 * W) { mm = choices[i]; }
    }
    var len = mm * pxPerMm, x1 = W - 14 * dpr, x0 = x1 - len, y = H - 16 * dpr;
    ctx.strokeStyle = "rgba(230,237,243,0.8)";
    ctx.lineWidth = 2 * dpr;
    ctx.beginPath();
    ctx.moveTo(x0, y - 4 * dpr); ctx.lineTo(x0, y); ctx.lineTo(x1, y); ctx.lineTo(x1, y - 4 * dpr);
    ctx.stroke();
    ctx.fillStyle = "rgba(230,237,243,0.85)";
    ctx.font = (11 * dpr) + "px sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "bottom";
    ctx.fillText(mm + " mm", (x0 + x1) / 2, y - 5 * dpr);
    ctx.textAlign = "start";
  }

  // ------------------------------------------------------------ 2D panels
  var views2d = data.views.map(function (v) {
    var canvas = document.getElementById("canvas-" + v.name);
    canvas.style.aspectRatio = v.columns + " / " + v.rows;
    var pictures = {};
    Object.keys(v.images).forEach(function (key) {
      var img = new Image();
      img.onload = function () { if (currentPair(v) === Number(key)) { draw2d(view); } };
      img.src = v.images[key];
      pictures[key] = img;
    });
    var view = { meta: v, canvas: canvas, ctx: canvas.getContext("2d"), pictures: pictures, index: data.views.indexOf(v) };
    return view;
  });

  function currentPair(v) {
    return data.frames[state.frame].pair[data.views.indexOf(v)];
  }

  function imageToCanvas(view, W, H) {
    return { sx: W / view.meta.columns, sy: H / view.meta.rows };
  }

  function draw2d(view) {
    var canvas = view.canvas, ctx = view.ctx;
    var dpr = fitCanvas(canvas);
    var W = canvas.width, H = canvas.height, v = view.meta;
    ctx.fillStyle = BG;
    ctx.fillRect(0, 0, W, H);
    var pair = currentPair(v);
    var img = view.pictures[String(pair)];
    if (img && img.complete && img.naturalWidth > 0) {
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(img, 0, 0, W, H);
    } else if (!img) {
      ctx.fillStyle = "#5c6670";
      ctx.font = (12 * dpr) + "px sans-serif";
      ctx.textAlign = "center";
      ctx.fillText("no angiogram supplied", W / 2, H / 2);
      ctx.textAlign = "start";
    }
    var f = data.frames[state.frame];
    var same = f.sameTopology;
    var rc = f.proj[v.name];
    var m = imageToCanvas(view, W, H);
    var X = [], Y = [];
    for (var i = 0; i < rc.length / 2; i++) {
      var r = rc[2 * i], c = rc[2 * i + 1];
      // Pixel centres sit at integer (row, col); pixel (0, 0) covers [-0.5, 0.5].
      X[i] = r === null || c === null ? null : (c + 0.5) * m.sx;
      Y[i] = r === null || c === null ? null : (r + 0.5) * m.sy;
    }
    view.screen = { x: X, y: Y, frame: state.frame, dpr: dpr };
    if (state.overlay) {
      var edges = frameEdges(f);
      var hasHi = state.highlighted !== null && same;
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      var pass, e;
      // Pass 0: other vessels; 1: dark casing of the selection; 2: its core.
      for (pass = 0; pass < 3; pass++) {
        for (e = 0; e < edges.length; e++) {
          var a = edges[e][0], b = edges[e][1];
          if (X[a] === null || X[b] === null) { continue; }
          var hi = hasHi && hiEdge[e] === 1;
          if ((pass > 0) !== hi) { continue; }
          if (pass === 1) {
            ctx.strokeStyle = "rgba(0,0,0,0.75)";
            ctx.lineWidth = 5 * dpr;
          } else if (pass === 2) {
            ctx.strokeStyle = ACCENT;
            ctx.lineWidth = 2.6 * dpr;
          } else {
            ctx.strokeStyle = rgbString(edgeRgb(e, same), 1, hasHi ? 0.35 : 0.8);
            ctx.lineWidth = 1.5 * dpr;
          }
          ctx.beginPath(); ctx.moveTo(X[a], Y[a]); ctx.lineTo(X[b], Y[b]); ctx.stroke();
        }
      }
      if (same) { drawStenosisMarkers(ctx, X, Y, dpr, 0.8); }
    }
    ctx.font = (11 * dpr) + "px sans-serif";
    ctx.textBaseline = "top";
    var label = v.name + "  " + v.label + (img ? "  \u00b7  image " + (pair + 1) + " / " + v.numImageFrames : "");
    var tw = ctx.measureText(label).width;
    ctx.fillStyle = "rgba(10,13,18,0.65)";
    ctx.fillRect(6 * dpr, 6 * dpr, tw + 12 * dpr, 18 * dpr);
    ctx.fillStyle = "#e6edf3";
    ctx.fillText(label, 12 * dpr, 9 * dpr);
  }

  // ------------------------------------------------------------- picking
  function segDistance(px, py, ax, ay, bx, by) {
    var dx = bx - ax, dy = by - ay, L = dx * dx + dy * dy;
    var t = L > 0 ? ((px - ax) * dx + (py - ay) * dy) / L : 0;
    t = Math.max(0, Math.min(1, t));
    var qx = ax + t * dx - px, qy = ay + t * dy - py;
    return Math.sqrt(qx * qx + qy * qy);
  }

  function pick(X, Y, px, py, tol, widths, Z) {
    var f = data.frames[state.frame];
    if (!f.sameTopology) { return -1; }
    var edges = data.edges, best = -1, bestScore = Infinity;
    for (var e = 0; e < edges.length; e++) {
      var a = edges[e][0], b = edges[e][1];
      if (X[a] === null || X[b] === null) { continue; }
      var d = segDistance(px, py, X[a], Y[a], X[b], Y[b]);
      var lim = tol + (widths ? widths[e] / 2 : 0);
      if (d > lim) { continue; }
      // In 3D the front-most hit wins; in 2D the nearest.
      var score = Z ? -(Z[a] + Z[b]) + d * 1e-6 : d;
      if (score < bestScore) { bestScore = score; best = e; }
    }
    return best < 0 ? -1 : edgeSegment[best];
  }

  function eventPoint(canvas, ev) {
    var rect = canvas.getBoundingClientRect();
    var sx = canvas.width / rect.width, sy = canvas.height / rect.height;
    return [(ev.clientX - rect.left) * sx, (ev.clientY - rect.top) * sy];
  }

  views2d.forEach(function (view) {
    view.canvas.addEventListener("click", function (ev) {
      if (!view.screen) { return; }
      var pt = eventPoint(view.canvas, ev);
      var sid = pick(view.screen.x, view.screen.y, pt[0], pt[1], 7 * view.screen.dpr, null, null);
      highlight(sid >= 0 ? sid : null);
    });
  });

  var drag = null;
  canvas3d.addEventListener("pointerdown", function (ev) {
    drag = { x: ev.clientX, y: ev.clientY, x0: ev.clientX, y0: ev.clientY, pan: ev.shiftKey || ev.button === 2 };
    canvas3d.setPointerCapture(ev.pointerId);
    canvas3d.classList.add("dragging");
  });
  canvas3d.addEventListener("pointermove", function (ev) {
    if (!drag) { return; }
    var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    drag.x = ev.clientX; drag.y = ev.clientY;
    if (drag.pan) {
      // Screen px -> screen mm at the current scale.
      var mmPerPx = (window.devicePixelRatio || 1) * data.extent / (0.46 * Math.min(canvas3d.width, canvas3d.height) * cam.zoom);
      cam.panX += dx * mmPerPx; cam.panY += dy * mmPerPx; dirty3d = true;
    } else { rotate(dx * 0.01, dy * 0.01); }
    requestDraw3d();
  });
  canvas3d.addEventListener("pointerup", function (ev) {
    if (!drag) { return; }
    var moved = Math.hypot(ev.clientX - drag.x0, ev.clientY - drag.y0);
    drag = null;
    canvas3d.classList.remove("dragging");
    if (moved < 4) {
      if (dirty3d) { draw3d(); }
      var pt = eventPoint(canvas3d, ev);
      var sid = pick(screen.x, screen.y, pt[0], pt[1], 4 * screen.dpr, screen.w, screen.z);
      highlight(sid >= 0 ? sid : null);
    }
  });
  canvas3d.addEventListener("contextmenu", function (ev) { ev.preventDefault(); });
  canvas3d.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    cam.zoom = Math.min(20, Math.max(0.2, cam.zoom * Math.exp(-ev.deltaY * 0.0015)));
    dirty3d = true;
    requestDraw3d();
  }, { passive: false });
  canvas3d.addEventListener("dblclick", function () { resetCamera(); draw3d(); });

  var pending = false;
  function requestDraw3d() {
    if (pending) { return; }
    pending = true;
    window.requestAnimationFrame(function () { pending = false; draw3d(); });
  }

  // --------------------------------------------------------------- state
  var slider = document.getElementById("frame-slider");
  var counter = document.getElementById("frame-counter");
  var playButton = document.getElementById("play-button");

  function drawAll() {
    draw3d();
    views2d.forEach(draw2d);
  }

  function setFrame(k) {
    k = Math.round(Number(k));
    if (!isFinite(k)) { return state.frame; }
    k = Math.max(0, Math.min(T - 1, k));
    state.frame = k;
    if (Number(slider.value) !== k) { slider.value = String(k); }
    counter.textContent = "Frame " + (k + 1) + " / " + T;
    data.views.forEach(function (v, idx) {
      var ref = document.querySelector('[data-frame-ref="' + CSS.escape(v.name) + '"]');
      if (ref) { ref.textContent = "frame " + (data.frames[k].pair[idx] + 1); }
    });
    dirty3d = true;
    drawAll();
    return k;
  }

  function highlight(segId) {
    if (segId === undefined || segId === null || segId === -1 || !(segId in segById)) {
      segId = null;
    } else {
      segId = Number(segId);
    }
    state.highlighted = segId;
    hiEdge.fill(0);
    if (segId !== null) {
      segById[segId].edges.forEach(function (e) { hiEdge[e] = 1; });
    }
    document.querySelectorAll("[data-seg]").forEach(function (node) {
      node.classList.toggle("selected", segId !== null && Number(node.getAttribute("data-seg")) === segId);
    });
    showSelection();
    dirty3d = true;
    drawAll();
    return segId;
  }

  function play() {
    if (state.playing || T < 2) { return; }
    state.playing = true;
    playButton.textContent = "\u275a\u275a Pause";
    playButton.setAttribute("aria-label", "Pause");
    state.timer = window.setInterval(function () { setFrame((state.frame + 1) % T); }, 1000 / FPS);
  }

  function pause() {
    state.playing = false;
    if (state.timer !== null) { window.clearInterval(state.timer); state.timer = null; }
    playButton.textContent = "\u25b6 Play";
    playButton.setAttribute("aria-label", "Play");
  }

  slider.addEventListener("input", function () { setFrame(slider.value); });
  slider.addEventListener("change", function () { setFrame(slider.value); });
  playButton.addEventListener("click", function () { if (state.playing) { pause(); } else { play(); } });
  if (T < 2) { slider.disabled = true; playButton.disabled = true; }
  document.getElementById("overlay-toggle").addEventListener("change", function (ev) {
    state.overlay = ev.target.checked;
    views2d.forEach(draw2d);
  });
  document.addEventListener("keydown", function (ev) {
    var tag = ev.target && ev.target.tagName;
    if (tag === "INPUT" || tag === "BUTTON" || tag === "TEXTAREA") { return; }
    if (ev.key === " ") { ev.preventDefault(); if (state.playing) { pause(); } else { play(); } }
    else if (ev.key === "ArrowRight") { setFrame(Math.min(T - 1, state.frame + 1)); }
    else if (ev.key === "ArrowLeft") { setFrame(Math.max(0, state.frame - 1)); }
    else if (ev.key === "Escape") { highlight(null); }
  });

  // ------------------------------------------------------ legend, tables
  function buildLegend() {
    var ul = document.getElementById("legend");
    data.segments.forEach(function (s) {
      var li = el("li", { "data-seg": String(s.id), title: s.name });
      var sw = el("span", { "class": "swatch" });
      sw.style.background = s.color;
      li.appendChild(sw);
      li.appendChild(el("span", null, s.name));
      li.addEventListener("click", function () { highlight(state.highlighted === s.id ? null : s.id); });
      ul.appendChild(li);
    });
  }

  function table(headers, rows) {
    var t = el("table", { "class": "data" });
    var thead = el("thead"), tr = el("tr");
    headers.forEach(function (h) { tr.appendChild(el("th", null, h)); });
    thead.appendChild(tr);
    t.appendChild(thead);
    var tbody = el("tbody");
    rows.forEach(function (r) { tbody.appendChild(r); });
    t.appendChild(tbody);
    var wrap = el("div", { "class": "table-scroll" });
    wrap.appendChild(t);
    return wrap;
  }

  function severityClass(ds) {
    if (ds === null || ds === undefined) { return ""; }
    return ds >= 70 ? "sev-high" : ds >= 50 ? "sev-mid" : "sev-low";
  }

  function buildTables() {
    var box = document.getElementById("measurements");
    if (!data.measurements) {
      // No table: the legend card takes the whole row and says why.
      box.parentNode.hidden = true;
      document.querySelector(".cards").classList.add("no-measurements");
      document.getElementById("legend").parentNode.insertBefore(el("p", { "class": "empty" },
        "No measurements were supplied with this reconstruction; the segments are the unbranched " +
        "centre-line paths of frame 1."), document.getElementById("legend"));
      return;
    }
    var names = data.views.map(function (v) { return v.name; });
    var headers = ["Segment", "Length (mm)"];
    names.forEach(function (n) { headers.push("Foreshort. " + n + " (%)"); });
    headers.push("Mean \u00d8 (mm)", "Optimal view", "FS / overlap (%)");
    var rows = data.segments.map(function (s) {
      var tr = el("tr", { "data-seg": String(s.id) });
      var name = el("td");
      var sw = el("span", { "class": "swatch" });
      sw.style.background = s.color;
      sw.style.display = "inline-block";
      sw.style.marginRight = "8px";
      sw.style.verticalAlign = "middle";
      name.appendChild(sw);
      name.appendChild(document.createTextNode(s.name));
      tr.appendChild(name);
      tr.appendChild(el("td", null, fmt(s.length_mm, 1)));
      names.forEach(function (n) {
        var fs = s.foreshortening_percent ? s.foreshortening_percent[n] : null;
        tr.appendChild(el("td", null, fmt(fs, 1)));
      });
      tr.appendChild(el("td", null, fmt(s.mean_diameter_mm, 2)));
      var ov = s.optimal_view;
      tr.appendChild(el("td", null, ov ? poseText(ov.primary_deg, ov.secondary_deg) : "\u2014"));
      tr.appendChild(el("td", null, ov ? fmt(ov.foreshortening_percent, 1) + " / " + fmt(ov.overlap_percent, 1) : "\u2014"));
      tr.addEventListener("click", function () { highlight(s.id); });
      return tr;
    });
    box.appendChild(table(headers, rows));

    box.appendChild(el("h3", null, "Stenoses"));
    if (!data.stenoses.length) {
      box.appendChild(el("p", { "class": "empty" }, "No stenosis reported."));
      return;
    }
    var srows = data.stenoses.map(function (st) {
      var seg = st.segment !== null ? segById[st.segment] : null;
      var tr = el("tr", { "data-seg": seg ? String(seg.id) : "" });
      tr.appendChild(el("td", null, st.name || (seg ? seg.name : "\u2014")));
      tr.appendChild(el("td", null, fmt(st.distance_from_ostium_mm, 1)));
      var sd = st.uncertainty || {};
      tr.appendChild(el("td", { "class": severityClass(st.diameter_stenosis_percent) },
        withSd(st.diameter_stenosis_percent, sd.diameter_stenosis_percent, 0)));
      tr.appendChild(el("td", null, withSd(st.minimal_diameter_mm, sd.minimal_diameter_mm, 2)));
      tr.appendChild(el("td", null, withSd(st.reference_diameter_mm, sd.reference_diameter_mm, 2)));
      tr.appendChild(el("td", null, fmt(st.lesion_length_mm, 1)));
      tr.addEventListener("click", function () { if (seg) { highlight(seg.id); } });
      return tr;
    });
    box.appendChild(table(["Vessel", "From ostium (mm)", "Diameter stenosis (%, \u00b1 SD)", "MLD (mm, \u00b1 SD)",
      "Reference \u00d8 (mm, \u00b1 SD)", "Lesion length (mm)"], srows));
    buildEvidence(box);
  }

  // A value and, when the finding carries one, its standard deviation ("55 \u00b1 6").
  function withSd(value, sd, digits) {
    return sd === null || sd === undefined ? fmt(value, digits) : fmt(value, digits) + " \u00b1 " + fmt(sd, digits);
  }

  // ------------------------------------------------- evidence of each stenosis
  // Per finding: a crop of each view around its narrowest point (the measured
  // frame's images) and each view's own diameter profile through it.
  var VIEW_COLOURS = ["#58a6ff", "#f0883e", "#a371f7", "#3fb950"];

  function buildEvidence(box) {
    var frame = data.measurements && data.measurements.frame !== null ? data.measurements.frame : 0;
    if (frame >= data.frames.length) { frame = 0; }
    data.stenoses.forEach(function (st, k) {
      var div = el("div", { "class": "evidence", "data-stenosis": String(k) });
      var title = (st.name || "stenosis") + ": " + fmt(st.diameter_stenosis_percent, 0) + " % diameter stenosis" +
        (st.measured_in ? " (measured in the " + st.measured_in + ")" : "");
      div.appendChild(el("h4", null, title));
      var row = el("div", { "class": "evidence-row" });
      views2d.forEach(function (view) {
        var c = el("canvas", { "class": "evidence-crop", "width": "144", "height": "144",
          "title": "view " + view.meta.name + " around the narrowest point" });
        row.appendChild(c);
        drawCrop(c, view, frame, st.node);
      });
      var p = el("canvas", { "class": "evidence-profile", "width": "300", "height": "144" });
      row.appendChild(p);
      div.appendChild(row);
      box.appendChild(div);
      drawViewProfiles(p, st);
    });
  }

  function drawCrop(canvas, view, frame, node) {
    var ctx = canvas.getContext("2d");
    ctx.fillStyle = BG;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    var proj = data.frames[frame].proj[view.meta.name];
    if (node === null || !proj || proj[2 * node] === null) { return; }
    var r = proj[2 * node], c = proj[2 * node + 1], half = 24;
    var img = view.pictures[String(data.frames[frame].pair[view.index])];
    function paint() {
      var s = img.naturalWidth / view.meta.columns;
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(img, (c - half) * s, (r - half) * s, 2 * half * s, 2 * half * s, 0, 0, canvas.width, canvas.height);
      ctx.strokeStyle = ACCENT;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.arc(canvas.width / 2, canvas.height / 2, canvas.width / 8, 0, 2 * Math.PI);
      ctx.stroke();
      ctx.fillStyle = "#e6edf3";
      ctx.font = "11px sans-serif";
      ctx.fillText(view.meta.name, 4, 12);
    }
    if (!img) { return; }
    if (img.complete && img.naturalWidth) { paint(); } else { img.addEventListener("load", paint); }
  }

  function drawViewProfiles(canvas, st) {
    var ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height;
    ctx.fillStyle = BG;
    ctx.fillRect(0, 0, W, H);
    var p = st.view_profiles;
    ctx.fillStyle = "#8b949e";
    ctx.font = "10px sans-serif";
    if (!p || p.arc_mm.length < 2) { ctx.fillText("no per-view profile", 8, 16); return; }
    var names = Object.keys(p.diameter_mm), ymax = 0;
    names.forEach(function (n) { p.diameter_mm[n].forEach(function (d) { if (d !== null && d > ymax) { ymax = d; } }); });
    if (st.reference_diameter_mm !== null && st.reference_diameter_mm > ymax) { ymax = st.reference_diameter_mm; }
    ymax = Math.max(ymax * 1.15, 0.5);
    var x0 = p.arc_mm[0], x1 = p.arc_mm[p.arc_mm.length - 1], L = 28, R = 6, T = 6, B = 18;
    function px(x) { return L + (x - x0) / Math.max(1e-9, x1 - x0) * (W - L - R); }
    function py(y) { return H - B - y / ymax * (H - T - B); }
    ctx.strokeStyle = "#2a313c";
    ctx.beginPath(); ctx.moveTo(L, T); ctx.lineTo(L, H - B); ctx.lineTo(W - R, H - B); ctx.stroke();
    if (st.reference_diameter_mm !== null) {
      ctx.setLineDash([4, 3]);
      ctx.strokeStyle = "#8b949e";
      ctx.beginPath(); ctx.moveTo(L, py(st.reference_diameter_mm)); ctx.lineTo(W - R, py(st.reference_diameter_mm)); ctx.stroke();
      ctx.setLineDash([]);
    }
    ctx.strokeStyle = "#30363d";
    ctx.beginPath(); ctx.moveTo(px(0), T); ctx.lineTo(px(0), H - B); ctx.stroke();
    names.forEach(function (n, k) {
      ctx.strokeStyle = VIEW_COLOURS[k % VIEW_COLOURS.length];
      ctx.lineWidth = 1.6;
      ctx.beginPath();
      var pen = false;
      p.diameter_mm[n].forEach(function (d, i) {
        if (d === null) { pen = false; return; }
        if (pen) { ctx.lineTo(px(p.arc_mm[i]), py(d)); } else { ctx.moveTo(px(p.arc_mm[i]), py(d)); pen = true; }
      });
      ctx.stroke();
      ctx.fillStyle = VIEW_COLOURS[k % VIEW_COLOURS.length];
      ctx.fillText("view " + n, W - R - 48, T + 10 + 12 * k);
    });
    ctx.lineWidth = 1;
    ctx.fillStyle = "#8b949e";
    ctx.textAlign = "right";
    ctx.fillText(fmt(ymax, 1), L - 3, py(ymax) + 4);
    ctx.fillText("0", L - 3, py(0));
    ctx.textAlign = "center";
    ctx.fillText("mm from the MLD \u00b7 diameter (mm) \u00b7 reference dashed", (L + W - R) / 2, H - 4);
    ctx.textAlign = "start";
  }

  function showSelection() {
    var info = document.getElementById("selection-info");
    var prof = document.getElementById("profile-canvas");
    info.textContent = "";
    if (state.highlighted === null) {
      info.appendChild(el("span", { "class": "muted" }, "Click a vessel in any panel, the legend or the table."));
      prof.hidden = true;
      return;
    }
    var s = segById[state.highlighted];
    var b = el("strong", null, s.name);
    b.style.color = ACCENT;
    info.appendChild(b);
    var parts = [];
    if (s.length_mm !== null && s.length_mm !== undefined) { parts.push(fmt(s.length_mm, 1) + " mm long"); }
    if (s.mean_diameter_mm !== null && s.mean_diameter_mm !== undefined) { parts.push("mean \u00d8 " + fmt(s.mean_diameter_mm, 2) + " mm"); }
    var sts = stenosesBySeg[s.id] || [];
    if (sts.length) { parts.push(sts.length + " stenos" + (sts.length > 1 ? "es" : "is")); }
    if (parts.length) { info.appendChild(document.createTextNode(" \u2014 " + parts.join(", "))); }
    var p = s.diameter_profile;
    if (p && p.arc_mm && p.arc_mm.length > 1) {
      prof.hidden = false;
      drawProfile(prof, p, s.color);
    } else {
      prof.hidden = true;
    }
  }

  function drawProfile(canvas, p, colour) {
    var dpr = fitCanvas(canvas), ctx = canvas.getContext("2d");
    var W = canvas.width, H = canvas.height;
    ctx.fillStyle = BG;
    ctx.fillRect(0, 0, W, H);
    var xs = [], ys = [], i;
    for (i = 0; i < p.arc_mm.length; i++) {
      if (p.arc_mm[i] !== null && p.diameter_mm[i] !== null) { xs.push(p.arc_mm[i]); ys.push(p.diameter_mm[i]); }
    }
    if (xs.length < 2) { return; }
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y1 = Math.max.apply(null, ys) * 1.15, y0 = 0;
    var L = 34 * dpr, R = 8 * dpr, Tp = 8 * dpr, B = 20 * dpr;
    function px(x) { return L + (x - x0) / Math.max(1e-9, x1 - x0) * (W - L - R); }
    function py(y) { return H - B - (y - y0) / Math.max(1e-9, y1 - y0) * (H - Tp - B); }
    ctx.strokeStyle = "#2a313c";
    ctx.lineWidth = 1 * dpr;
    ctx.beginPath(); ctx.moveTo(L, Tp); ctx.lineTo(L, H - B); ctx.lineTo(W - R, H - B); ctx.stroke();
    ctx.strokeStyle = colour;
    ctx.lineWidth = 1.8 * dpr;
    ctx.beginPath();
    for (i = 0; i < xs.length; i++) { if (i === 0) { ctx.moveTo(px(xs[i]), py(ys[i])); } else { ctx.lineTo(px(xs[i]), py(ys[i])); } }
    ctx.stroke();
    ctx.fillStyle = "#8b949e";
    ctx.font = (10 * dpr) + "px sans-serif";
    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    ctx.fillText(fmt(y1, 1), L - 4 * dpr, py(y1));
    ctx.fillText("0", L - 4 * dpr, py(0));
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    ctx.fillText("arc length (mm) \u2192   diameter (mm) \u2191", (L + W - R) / 2, H - B + 5 * dpr);
    ctx.textAlign = "start";
  }

  // ----------------------------------------------------------------- init
  resetCamera();
  buildLegend();
  buildTables();
  showSelection();
  setFrame(0);
  if (typeof ResizeObserver !== "undefined") {
    var ro = new ResizeObserver(function () { dirty3d = true; drawAll(); });
    ro.observe(canvas3d);
    views2d.forEach(function (v) { ro.observe(v.canvas); });
  } else {
    window.addEventListener("resize", function () { dirty3d = true; drawAll(); });
  }

  window.autocarViewer = {
    get frame() { return state.frame; },
    numFrames: T,
    get highlighted() { return state.highlighted; },
    get playing() { return state.playing; },
    segmentIds: segIds.slice(),
    setFrame: setFrame,
    highlight: highlight,
    play: play,
    pause: pause,
    sceneSignature: function () {
      if (dirty3d) { draw3d(); }
      return lastSignature;
    },
    imagesReady: function () {
      return views2d.every(function (v) {
        return Object.keys(v.pictures).every(function (k) { return v.pictures[k].complete; });
      });
    },
    /* CSS px of node i in the 3D canvas (relative to its top-left), for tests. */
    nodeScreenPosition3d: function (i) {
      if (dirty3d) { draw3d(); }
      return [screen.x[i] / screen.dpr, screen.y[i] / screen.dpr];
    }
  };
  document.documentElement.setAttribute("data-viewer-ready", "1");
})();
