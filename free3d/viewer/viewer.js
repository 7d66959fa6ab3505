/* free3d viewer: skeleton motions on a floor grid, drawn on a 2D canvas through a small
   perspective camera of its own. No library and no network: the same file runs in
   `free3d serve` and inline in every HTML file `--format html` writes (opened from disk).

   A motion is {label, fps, joints, parents, left, right, head}: joints a flat list of
   T * J * 3 numbers (metres, Y up), parents one per joint (-1 for the root), left and
   right the joint indices of each side (the rest are drawn as the centre line), head
   the joint drawn as a circle (optional).

   Free3DViewer.create(element, motions, options) -> viewer; options.autoplay (true). */
(function (global) {
  "use strict";

  var COLORS = { left: "#1f6fd1", right: "#d62728", centre: "#4a4a4a", path: "#2ca02c" };
  var FOV = 40 * Math.PI / 180;  // vertical field of view
  var NEAR = 0.05;  // metres in front of the eye where drawing stops
  var SPEEDS = [0.25, 0.5, 1, 2];
  var DEFAULT_VIEW = { yaw: Math.PI / 4, pitch: 0.28 };  // front-left and a little above

  function el(tag, attrs, parent, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function sub(a, b) { return [a[0] - b[0], a[1] - b[1], a[2] - b[2]]; }
  function cross(a, b) { return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]; }
  function unit(a) { var n = Math.hypot(a[0], a[1], a[2]) || 1; return [a[0] / n, a[1] / n, a[2] / n]; }

  /* A motion checked and indexed once: per-joint sides, the root path, the body's size. */
  function prepare(m) {
    var J = m.parents.length;
    var T = Math.floor(m.joints.length / (3 * J));
    if (!J || !T || T * J * 3 !== m.joints.length) throw new Error("motion " + m.label + ": joints do not fit the skeleton");
    var joints = Float32Array.from(m.joints);
    var side = [];
    for (var j = 0; j < J; j++) side.push("centre");
    (m.left || []).forEach(function (j) { side[j] = "left"; });
    (m.right || []).forEach(function (j) { side[j] = "right"; });
    var top = 0, x0 = Infinity, x1 = -Infinity, z0 = Infinity, z1 = -Infinity;
    for (var t = 0; t < T; t++) {
      var r = t * J * 3;
      x0 = Math.min(x0, joints[r]); x1 = Math.max(x1, joints[r]);
      z0 = Math.min(z0, joints[r + 2]); z1 = Math.max(z1, joints[r + 2]);
      for (var k = 0; k < J; k++) top = Math.max(top, joints[r + 3 * k + 1]);
    }
    var head = typeof m.head === "number" && m.head >= 0 && m.head < J ? m.head : -1;
    return { label: String(m.label || "motion"), fps: m.fps || 20, T: T, J: J, joints: joints,
             parents: m.parents, side: side, head: head, height: Math.max(top, 0.5),
             box: [x0, x1, z0, z1] };
  }

  function Viewer(root, motions, options) {
    options = options || {};
    this.root = root;
    root.classList.add("f3d-viewer");
    root.textContent = "";
    var head = el("div", { "class": "f3d-head" }, root);
    this.selectBox = el("select", { "class": "f3d-select", "aria-label": "motion" }, head);
    this.title = el("div", { "class": "f3d-title" }, head);
    var stage = el("div", { "class": "f3d-stage" }, root);
    this.canvas = el("canvas", { "class": "f3d-canvas", tabindex: "0",
                                 "aria-label": "3D view: drag to orbit, wheel to zoom" }, stage);
    var legend = el("div", { "class": "f3d-legend" }, stage);
    [["left", "left"], ["right", "right"], ["path", "root path"]].forEach(function (p) {
      var item = el("span", {}, legend);
      el("i", {}, item).style.background = COLORS[p[0]];  // CSSOM: allowed by a strict style-src
      item.appendChild(document.createTextNode(p[1]));
    });
    el("div", { "class": "f3d-hint" }, stage, "drag: orbit \u00b7 wheel: zoom \u00b7 double-click: reset");
    var bar = el("div", { "class": "f3d-bar" }, root);
    this.playButton = el("button", { type: "button", "class": "f3d-play" }, bar, "Pause");
    this.scrub = el("input", { type: "range", "class": "f3d-scrub", min: "0", max: "0", step: "1",
                               value: "0", "aria-label": "frame" }, bar);
    this.clock = el("span", { "class": "f3d-time" }, bar, "");
    var speedLabel = el("label", { "class": "f3d-speed" }, bar, "speed ");
    this.speedBox = el("select", { "aria-label": "speed" }, speedLabel);
    SPEEDS.forEach(function (s) {
      var o = el("option", { value: String(s) }, this.speedBox, s + "\u00d7");
      if (s === 1) o.selected = true;
    }, this);
    var followLabel = el("label", { "class": "f3d-follow" }, bar);
    this.followBox = el("input", { type: "checkbox" }, followLabel);
    this.followBox.checked = true;
    followLabel.appendChild(document.createTextNode(" follow"));
    this.resetButton = el("button", { type: "button", "class": "f3d-reset" }, bar, "Reset view");

    this.motions = [];
    this.index = 0;
    this.time = 0;
    this.frame = 0;
    this.speed = 1;
    this.playing = options.autoplay !== false;
    this.view = { yaw: DEFAULT_VIEW.yaw, pitch: DEFAULT_VIEW.pitch, zoom: 1 };
    this.target = null;
    this.last = null;
    this._bind();
    this.setMotions(motions || [], 0);
    var self = this;
    function tick(now) {
      self._advance(now);
      self.draw();
      global.requestAnimationFrame(tick);
    }
    global.requestAnimationFrame(tick);
  }

  Viewer.prototype.setMotions = function (motions, index) {
    this.motions = motions.map(prepare);
    this.drawn = null;
    var box = this.selectBox;
    box.textContent = "";
    this.motions.forEach(function (m, i) { el("option", { value: String(i) }, box, (i + 1) + ". " + m.label); });
    box.style.display = this.motions.length > 1 ? "" : "none";
    if (this.motions.length) this.select(Math.min(index || 0, this.motions.length - 1));
    else this.title.textContent = "no motion yet";
  };

  Viewer.prototype.select = function (i) {
    this.index = i;
    this.selectBox.value = String(i);
    var m = this.motions[i];
    this.title.textContent = m.label;
    this.scrub.max = String(m.T - 1);
    this.time = 0;
    this.target = null;  // the camera jumps to the new motion instead of gliding there
    this.drawn = null;
  };

  Viewer.prototype.motion = function () { return this.motions[this.index]; };

  Viewer.prototype.setPlaying = function (on) {
    this.playing = on;
    this.playButton.textContent = on ? "Pause" : "Play";
    this.last = null;
  };

  Viewer.prototype._bind = function () {
    var self = this, c = this.canvas, drag = null;
    this.playButton.addEventListener("click", function () { self.setPlaying(!self.playing); });
    this.selectBox.addEventListener("change", function () { self.select(Number(self.selectBox.value)); });
    this.speedBox.addEventListener("change", function () { self.speed = Number(self.speedBox.value); });
    this.scrub.addEventListener("input", function () {
      var m = self.motion();
      if (!m) return;
      self.setPlaying(false);
      self.time = Number(self.scrub.value) / m.fps;
    });
    this.resetButton.addEventListener("click", function () { self.resetView(); });
    c.addEventListener("dblclick", function () { self.resetView(); });
    c.addEventListener("pointerdown", function (e) {
      drag = { x: e.clientX, y: e.clientY };
      c.setPointerCapture(e.pointerId);
    });
    c.addEventListener("pointermove", function (e) {
      if (!drag) return;
      self.view.yaw -= (e.clientX - drag.x) * 0.01;
      self.view.pitch = Math.min(1.45, Math.max(-0.1, self.view.pitch + (e.clientY - drag.y) * 0.01));
      drag = { x: e.clientX, y: e.clientY };
    });
    function end() { drag = null; }
    c.addEventListener("pointerup", end);
    c.addEventListener("pointercancel", end);
    c.addEventListener("wheel", function (e) {
      e.preventDefault();  // the page must not scroll while zooming
      self.view.zoom = Math.min(8, Math.max(0.15, self.view.zoom * Math.exp(e.deltaY * 0.001)));
    }, { passive: false });
    c.addEventListener("keydown", function (e) {
      if (e.key === " ") { e.preventDefault(); self.setPlaying(!self.playing); }
    });
  };

  Viewer.prototype.resetView = function () {
    this.view = { yaw: DEFAULT_VIEW.yaw, pitch: DEFAULT_VIEW.pitch, zoom: 1 };
    this.target = null;
  };

  Viewer.prototype._advance = function (now) {
    var m = this.motion();
    if (!m) return;
    if (this.playing && this.last !== null) {
      var dt = Math.min(0.1, (now - this.last) / 1000);  // a hidden tab does not jump ahead
      this.time = (this.time + dt * this.speed) % (m.T / m.fps);
    }
    this.last = this.playing ? now : null;
    this.frame = Math.min(m.T - 1, Math.floor(this.time * m.fps + 1e-6));
    if (this.playing) this.scrub.value = String(this.frame);
    this.canvas.setAttribute("data-frame", String(this.frame));
    this.clock.textContent = (this.frame / m.fps).toFixed(2) + " / " + (m.T / m.fps).toFixed(2) +
      " s \u00b7 frame " + (this.frame + 1) + "/" + m.T;
  };

  Viewer.prototype._camera = function (w, h) {
    var m = this.motion(), b = m.box, v = this.view;
    var aspect = w / h, tanY = Math.tan(FOV / 2);
    var goal, dist;
    if (this.followBox.checked) {  // the body fills about 60% of the height, whatever its path
      var r = m.joints, o = this.frame * m.J * 3;
      goal = [r[o], 0.5 * m.height, r[o + 2]];
      dist = m.height / (1.2 * tanY * Math.min(1, aspect));
    } else {  // the whole path in view
      goal = [(b[0] + b[1]) / 2, 0.5 * m.height, (b[2] + b[3]) / 2];
      var span = Math.max(b[1] - b[0], b[3] - b[2]) + 1.2;
      dist = Math.max(m.height / (1.2 * tanY), span / (1.4 * tanY * Math.min(1, aspect)));
    }
    if (!this.target) this.target = goal.slice();
    for (var i = 0; i < 3; i++) this.target[i] += (goal[i] - this.target[i]) * 0.15;  // glide, no jolt
    dist *= v.zoom;
    var cp = Math.cos(v.pitch), t = this.target;
    var eye = [t[0] + dist * cp * Math.sin(v.yaw), t[1] + dist * Math.sin(v.pitch), t[2] + dist * cp * Math.cos(v.yaw)];
    var fwd = unit(sub(t, eye));
    var right = unit(cross(fwd, [0, 1, 0]));
    return { eye: eye, fwd: fwd, right: right, up: cross(right, fwd), f: 0.5 * h / tanY, cx: w / 2, cy: h / 2 };
  };

  function toCamera(c, x, y, z) {
    var dx = x - c.eye[0], dy = y - c.eye[1], dz = z - c.eye[2];
    return [dx * c.right[0] + dy * c.right[1] + dz * c.right[2],
            dx * c.up[0] + dy * c.up[1] + dz * c.up[2],
            dx * c.fwd[0] + dy * c.fwd[1] + dz * c.fwd[2]];
  }

  function toScreen(c, p) { return [c.cx + c.f * p[0] / p[2], c.cy - c.f * p[1] / p[2]]; }

  /* A camera-space segment cut at the near plane, in pixels (null when wholly behind). */
  function clipSegment(c, a, b) {
    if (a[2] < NEAR && b[2] < NEAR) return null;
    if (a[2] < NEAR) a = lerp(a, b, (NEAR - a[2]) / (b[2] - a[2]));
    else if (b[2] < NEAR) b = lerp(b, a, (NEAR - b[2]) / (a[2] - b[2]));
    return [toScreen(c, a), toScreen(c, b)];
  }

  function lerp(a, b, s) { return [a[0] + (b[0] - a[0]) * s, a[1] + (b[1] - a[1]) * s, a[2] + (b[2] - a[2]) * s]; }

  /* A camera-space polygon cut at the near plane (Sutherland-Hodgman, one plane), in pixels. */
  function clipPolygon(c, pts) {
    var out = [];
    for (var i = 0; i < pts.length; i++) {
      var a = pts[i], b = pts[(i + 1) % pts.length];
      if (a[2] >= NEAR) out.push(a);
      if ((a[2] >= NEAR) !== (b[2] >= NEAR)) out.push(lerp(a, b, (NEAR - a[2]) / (b[2] - a[2])));
    }
    return out.map(function (p) { return toScreen(c, p); });
  }

  Viewer.prototype.draw = function () {
    var canvas = this.canvas, ratio = global.devicePixelRatio || 1;
    var w = Math.max(1, Math.round(canvas.clientWidth * ratio)), h = Math.max(1, Math.round(canvas.clientHeight * ratio));
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    var g = canvas.getContext("2d"), m = this.motion();
    if (!m) {
      g.fillStyle = "#f4f5f7";
      g.fillRect(0, 0, w, h);
      return;
    }
    var c = this._camera(w, h), px = h / 600;  // line widths scale with the canvas
    var v = this.view, t = this.target;
    var key = [w, h, this.index, this.frame, v.yaw, v.pitch, v.zoom, this.followBox.checked,
               t[0].toFixed(4), t[1].toFixed(4), t[2].toFixed(4)].join();
    if (key === this.drawn) return;  // nothing moved: no redraw (a paused viewer costs no CPU)
    this.drawn = key;
    g.fillStyle = "#f4f5f7";
    g.fillRect(0, 0, w, h);
    this._drawFloor(g, c, m, px);
    this._drawPath(g, c, m, px);
    this._drawBody(g, c, m, px);
  };

  Viewer.prototype._drawFloor = function (g, c, m, px) {
    var b = m.box, step = 0.5, margin = 3;
    var x0 = Math.floor((Math.min(b[0], this.target[0]) - margin) / step) * step;
    var x1 = Math.ceil((Math.max(b[1], this.target[0]) + margin) / step) * step;
    var z0 = Math.floor((Math.min(b[2], this.target[2]) - margin) / step) * step;
    var z1 = Math.ceil((Math.max(b[3], this.target[2]) + margin) / step) * step;
    var quad = clipPolygon(c, [[x0, 0, z0], [x1, 0, z0], [x1, 0, z1], [x0, 0, z1]].map(function (p) {
      return toCamera(c, p[0], p[1], p[2]);
    }));
    if (quad.length > 2) {
      g.beginPath();
      quad.forEach(function (p, i) { if (i) g.lineTo(p[0], p[1]); else g.moveTo(p[0], p[1]); });
      g.closePath();
      g.fillStyle = "#e3e6ea";
      g.fill();
    }
    var lines = [];
    for (var x = x0; x <= x1 + 1e-6; x += step) lines.push([[x, z0], [x, z1], x]);
    for (var z = z0; z <= z1 + 1e-6; z += step) lines.push([[x0, z], [x1, z], z]);
    lines.forEach(function (l) {
      var s = clipSegment(c, toCamera(c, l[0][0], 0, l[0][1]), toCamera(c, l[1][0], 0, l[1][1]));
      if (!s) return;
      var whole = Math.abs(l[2] - Math.round(l[2])) < 1e-6;  // metre lines darker
      g.strokeStyle = whole ? "#a9b0b8" : "#c9ced4";
      g.lineWidth = (whole ? 1.4 : 0.9) * px;
      g.beginPath(); g.moveTo(s[0][0], s[0][1]); g.lineTo(s[1][0], s[1][1]); g.stroke();
    });
  };

  Viewer.prototype._drawPath = function (g, c, m, px) {
    var J3 = m.J * 3, r = m.joints, self = this;
    function stroke(from, to, width, alpha, dash) {
      g.save();
      g.strokeStyle = COLORS.path;
      g.globalAlpha = alpha;
      g.lineWidth = width * px;
      g.setLineDash(dash.map(function (d) { return d * px; }));
      g.lineJoin = "round";
      g.beginPath();
      for (var t = from; t < to; t++) {
        var s = clipSegment(c, toCamera(c, r[t * J3], 0.002, r[t * J3 + 2]),
                            toCamera(c, r[(t + 1) * J3], 0.002, r[(t + 1) * J3 + 2]));
        if (s) { g.moveTo(s[0][0], s[0][1]); g.lineTo(s[1][0], s[1][1]); }
      }
      g.stroke();
      g.restore();
    }
    stroke(0, m.T - 1, 2, 0.45, [6, 6]);  // the whole path, dashed
    stroke(0, self.frame, 4, 0.95, []);  // travelled so far
  };

  Viewer.prototype._drawBody = function (g, c, m, px) {
    var o = this.frame * m.J * 3, r = m.joints, cam = [], floor = [], j;
    for (j = 0; j < m.J; j++) {
      cam.push(toCamera(c, r[o + 3 * j], r[o + 3 * j + 1], r[o + 3 * j + 2]));
      floor.push(toCamera(c, r[o + 3 * j], 0.001, r[o + 3 * j + 2]));
    }
    g.lineCap = "round";
    g.strokeStyle = "rgba(60, 64, 70, 0.28)";  // the shadow straight below: where the feet meet the floor
    for (j = 1; j < m.J; j++) {
      var s = clipSegment(c, floor[m.parents[j]], floor[j]);
      if (!s) continue;
      g.lineWidth = Math.max(2 * px, c.f * 0.045 / Math.max(NEAR, (floor[j][2] + floor[m.parents[j]][2]) / 2));
      g.beginPath(); g.moveTo(s[0][0], s[0][1]); g.lineTo(s[1][0], s[1][1]); g.stroke();
    }
    var items = [];  // bones and joints, far to near
    for (j = 1; j < m.J; j++) items.push({ depth: (cam[j][2] + cam[m.parents[j]][2]) / 2, bone: j });
    for (j = 0; j < m.J; j++) items.push({ depth: cam[j][2] - 1e-3, joint: j });
    items.sort(function (a, b) { return b.depth - a.depth; });
    items.forEach(function (it) {
      if (it.depth < NEAR) return;
      if (it.bone !== undefined) {
        var s = clipSegment(c, cam[m.parents[it.bone]], cam[it.bone]);
        if (!s) return;
        g.strokeStyle = COLORS[m.side[it.bone]];
        g.lineWidth = Math.max(2.5 * px, c.f * 0.045 / it.depth);
        g.beginPath(); g.moveTo(s[0][0], s[0][1]); g.lineTo(s[1][0], s[1][1]); g.stroke();
      } else {
        var p = toScreen(c, cam[it.joint]);
        var big = it.joint === m.head;
        var radius = Math.max((big ? 5 : 2) * px, c.f * (big ? 0.1 : 0.03) / it.depth);
        g.beginPath(); g.arc(p[0], p[1], radius, 0, 2 * Math.PI);
        g.fillStyle = big ? "#f4f5f7" : "#222";
        g.fill();
        if (big) { g.lineWidth = Math.max(2 * px, c.f * 0.03 / it.depth); g.strokeStyle = COLORS.centre; g.stroke(); }
      }
    });
  };

  global.Free3DViewer = {
    create: function (element, motions, options) { return new Viewer(element, motions, options); },
    colors: COLORS
  };
})(window);
