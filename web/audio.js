// fabula web player audio: generated music per mood, generated sound effects, and voiced lines from the server.
// Everything is Web Audio synthesis (no downloads); a story package may ship its own files, which take precedence.
// Graph: piece/effect/voice nodes -> bus gains (music, sound, voice) -> master -> speakers, with an analyser per bus.
'use strict';
(() => {
  const FADE = 1.6;  // seconds of a music cross-fade
  const AMBIENT = new Set(['rain', 'crowd', 'wind']);
  const A = {
    ctx: null, buses: {}, analysers: {}, story: null, fetch: (u) => fetch(u), isWriting: () => false,
    music: null, fading: [], ambient: new Map(), voice: null, voiceCache: new Map(), trace: [],
    volumes: { music: 0.6, sound: 0.8, voice: 1 },
  };
  window.FabulaAudio = A;
  const note = (m) => 440 * Math.pow(2, (m - 69) / 12);
  const log = (e) => { e.t = A.ctx ? +A.ctx.currentTime.toFixed(3) : 0; A.trace.push(e); if (A.trace.length > 500) A.trace.shift(); };

  // A seeded random source, so a mood's piece is the same every time it plays.
  function rng(seed) {
    let h = 2166136261;
    for (const c of seed) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
    return () => { h = Math.imul(h ^ (h >>> 15), 2246822507); h = Math.imul(h ^ (h >>> 13), 3266489909); return ((h ^= h >>> 16) >>> 0) / 4294967296; };
  }

  function setup() {
    if (A.ctx) return A.ctx;
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return null;
    A.ctx = new AC();
    const master = A.ctx.createGain(); master.connect(A.ctx.destination); A.master = master;
    for (const name of ['music', 'sound', 'voice']) {
      const g = A.ctx.createGain(); g.gain.value = A.volumes[name];
      const an = A.ctx.createAnalyser(); an.fftSize = 1024;
      g.connect(an); g.connect(master);
      A.buses[name] = g; A.analysers[name] = an;
    }
    // Browsers start audio only after a gesture; resume on the first one.
    const resume = () => { if (A.ctx.state !== 'running') A.ctx.resume(); };
    ['pointerdown', 'keydown'].forEach((t) => document.addEventListener(t, resume, { capture: true }));
    const len = A.ctx.sampleRate * 2;
    A.noise = A.ctx.createBuffer(1, len, A.ctx.sampleRate);
    const d = A.noise.getChannelData(0), r = rng('noise');
    for (let i = 0; i < len; i++) d[i] = r() * 2 - 1;
    return A.ctx;
  }

  // ---- volumes ----
  // v: {music, sound, voice} in 0..1 (mute already applied). Short ramps, so sliders don't click.
  A.setVolumes = (v) => {
    Object.assign(A.volumes, v);
    if (!A.ctx) return;
    for (const k of Object.keys(A.buses)) A.buses[k].gain.setTargetAtTime(A.volumes[k], A.ctx.currentTime, 0.03);
  };

  // ---- music ----
  // Each mood: tempo, key, scale, chord roots (scale degrees), timbres and how busy the melody is.
  const MAJOR = [0, 2, 4, 5, 7, 9, 11], MINOR = [0, 2, 3, 5, 7, 8, 10];
  const MOODS = {
    calm: { bpm: 76, root: 60, scale: MAJOR, prog: [0, 5, 3, 4], pad: 'sine', lead: 'triangle', busy: 0.45, drums: 0, cutoff: 1600 },
    upbeat: { bpm: 128, root: 62, scale: MAJOR, prog: [0, 4, 5, 3], pad: 'triangle', lead: 'square', busy: 0.8, drums: 2, cutoff: 2600 },
    tense: { bpm: 100, root: 57, scale: MINOR, prog: [0, 0, 5, 6], pad: 'sawtooth', lead: 'sawtooth', busy: 0.3, drums: 1, cutoff: 900 },
    tender: { bpm: 66, root: 65, scale: MAJOR, prog: [0, 3, 5, 4], pad: 'sine', lead: 'sine', busy: 0.5, drums: 0, cutoff: 1300 },
    melancholy: { bpm: 60, root: 57, scale: MINOR, prog: [0, 5, 3, 4], pad: 'triangle', lead: 'sine', busy: 0.35, drums: 0, cutoff: 1000 },
    comedic: { bpm: 150, root: 67, scale: MAJOR, prog: [0, 3, 4, 0], pad: 'triangle', lead: 'square', busy: 0.7, drums: 2, cutoff: 3000 },
  };
  function moodParams(name) {
    if (MOODS[name]) return MOODS[name];
    const r = rng(name);  // a mood this player does not know still gets its own piece
    return { bpm: 64 + Math.floor(r() * 70), root: 55 + Math.floor(r() * 10), scale: r() < 0.5 ? MAJOR : MINOR,
      prog: [0, 1 + Math.floor(r() * 6), 1 + Math.floor(r() * 6), 4], pad: 'triangle', lead: 'sine', busy: 0.3 + r() * 0.5,
      drums: Math.floor(r() * 3), cutoff: 900 + r() * 1800 };
  }
  // A 4-bar loop of eighth notes: the melody is drawn once per mood from its seeded random source.
  function compose(name) {
    const p = moodParams(name), r = rng(`piece:${name}`);
    const deg = (d, oct) => p.root + 12 * oct + p.scale[((d % 7) + 7) % 7] + 12 * Math.floor(d / 7);
    const melody = [];
    let at = 4;
    for (let i = 0; i < 32; i++) {
      const chord = p.prog[Math.floor(i / 8)];
      if (r() > p.busy && i % 2 === 1) { melody.push(null); continue; }
      at = Math.max(0, Math.min(9, at + Math.floor(r() * 5) - 2));
      melody.push(i % 4 === 0 ? deg(chord + 2 * Math.floor(r() * 3), 1) : deg(at, 1));
    }
    return { name, p, deg, melody, step: 0 };
  }
  function tone(dest, type, freq, t, dur, peak, attack = 0.01) {
    const o = A.ctx.createOscillator(), g = A.ctx.createGain();
    o.type = type; o.frequency.value = freq;
    g.gain.setValueAtTime(0, t); g.gain.linearRampToValueAtTime(peak, t + attack);
    g.gain.setTargetAtTime(0, t + Math.max(attack, dur * 0.6), dur * 0.25);
    o.connect(g); g.connect(dest); o.start(t); o.stop(t + dur * 1.6 + 0.1);
  }
  function noiseHit(dest, t, dur, peak, type, freq) {
    const s = A.ctx.createBufferSource(), f = A.ctx.createBiquadFilter(), g = A.ctx.createGain();
    s.buffer = A.noise; f.type = type; f.frequency.value = freq;
    g.gain.setValueAtTime(peak, t); g.gain.exponentialRampToValueAtTime(0.001, t + dur);
    s.connect(f); f.connect(g); g.connect(dest); s.start(t, Math.random()); s.stop(t + dur + 0.05);
  }
  function kick(dest, t) {
    const o = A.ctx.createOscillator(), g = A.ctx.createGain();
    o.frequency.setValueAtTime(130, t); o.frequency.exponentialRampToValueAtTime(45, t + 0.12);
    g.gain.setValueAtTime(0.5, t); g.gain.exponentialRampToValueAtTime(0.001, t + 0.25);
    o.connect(g); g.connect(dest); o.start(t); o.stop(t + 0.3);
  }
  // One eighth note of the piece at time t.
  function playStep(piece, t) {
    const { p, deg, melody } = piece, i = piece.step % 32, e = 60 / p.bpm / 2, chord = p.prog[Math.floor(i / 8)];
    if (i % 8 === 0) [0, 2, 4].forEach((k) => tone(piece.tone, p.pad, note(deg(chord + k, 0)), t, e * 8, 0.07, 0.3));
    if (i % 4 === 0 || (p.drums && i % 4 === 3)) tone(piece.tone, 'triangle', note(deg(chord, -1)), t, e * 1.8, 0.16);
    if (melody[i] != null) tone(piece.tone, p.lead, note(melody[i]), t, e * (p.busy > 0.6 ? 0.9 : 1.8), p.lead === 'sine' ? 0.1 : 0.05);
    if (p.drums >= 1 && i % 4 === 0) kick(piece.bus, t);
    if (p.drums >= 2 && i % 2 === 1) noiseHit(piece.bus, t, 0.05, 0.08, 'highpass', 7000);
    if (p.drums >= 1 && i % 8 === 4) noiseHit(piece.bus, t, 0.15, 0.15, 'bandpass', 1800);
    piece.step++;
  }
  function startSynth(piece) {
    piece.tone = A.ctx.createBiquadFilter(); piece.tone.type = 'lowpass'; piece.tone.frequency.value = piece.p.cutoff;
    piece.tone.connect(piece.bus);
    piece.next = A.ctx.currentTime + 0.05;
    // Look-ahead scheduler: notes are placed on the audio clock, the timer only keeps the queue filled.
    const tick = () => { while (piece.next < A.ctx.currentTime + 0.3) { playStep(piece, piece.next); piece.next += 60 / piece.p.bpm / 2; } };
    tick(); piece.timer = setInterval(tick, 60);
  }
  async function startFile(piece, url) {
    const buf = await loadBuffer(url);
    if (piece.stopped) return;
    const s = A.ctx.createBufferSource(); s.buffer = buf; s.loop = true; s.connect(piece.bus); s.start();
    piece.source = s;
  }
  const buffers = new Map();
  function loadBuffer(url) {
    if (!buffers.has(url)) buffers.set(url, A.fetch(url).then((r) => { if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`); return r.arrayBuffer(); })
      .then((b) => A.ctx.decodeAudioData(b)).catch((e) => { buffers.delete(url); throw e; }));
    return buffers.get(url);
  }
  function fadeOut(piece) {
    const t = A.ctx.currentTime;
    piece.bus.gain.cancelScheduledValues(t); piece.bus.gain.setValueAtTime(piece.bus.gain.value, t);
    piece.bus.gain.linearRampToValueAtTime(0, t + FADE);
    A.fading.push(piece);
    log({ kind: 'music-fade', name: piece.name });
    setTimeout(() => {
      piece.stopped = true; clearInterval(piece.timer);
      if (piece.source) piece.source.stop();
      piece.bus.disconnect(); A.fading = A.fading.filter((x) => x !== piece);
    }, FADE * 1000 + 100);
  }
  // The narrator's music tool: a mood from the manifest, or none / stop (fade out).
  A.playMusic = (mood) => {
    if (!setup()) return;
    const stop = !mood || mood === 'none' || mood === 'stop';
    if ((A.music && A.music.name === mood) || (stop && !A.music)) return;
    if (A.music) fadeOut(A.music);
    A.music = null;
    if (stop) { log({ kind: 'music', name: 'none' }); return; }
    const piece = compose(mood);
    piece.bus = A.ctx.createGain(); piece.bus.connect(A.buses.music);
    piece.bus.gain.setValueAtTime(0, A.ctx.currentTime); piece.bus.gain.linearRampToValueAtTime(1, A.ctx.currentTime + FADE);
    const file = A.story && A.story.audio && A.story.audio.music && A.story.audio.music[mood];
    piece.kind = file ? 'file' : 'synth';
    A.music = piece;
    log({ kind: 'music', name: mood, source: piece.kind });
    if (file) startFile(piece, file).catch((e) => { console.warn(`music ${mood}: ${e.message}; using the generated piece`); piece.kind = 'synth'; if (!piece.stopped) startSynth(piece); });
    else startSynth(piece);
  };

  // ---- sound effects ----
  const EFFECTS = {
    // A sliding classroom door: rolling rumble that rises, then the knock of the frame.
    door_slide(out, t) {
      const s = A.ctx.createBufferSource(), f = A.ctx.createBiquadFilter(), g = A.ctx.createGain();
      s.buffer = A.noise; f.type = 'bandpass'; f.Q.value = 3;
      f.frequency.setValueAtTime(300, t); f.frequency.linearRampToValueAtTime(900, t + 0.7);
      g.gain.setValueAtTime(0, t); g.gain.linearRampToValueAtTime(0.6, t + 0.1); g.gain.linearRampToValueAtTime(0.4, t + 0.65);
      g.gain.linearRampToValueAtTime(0, t + 0.75);
      s.connect(f); f.connect(g); g.connect(out); s.start(t); s.stop(t + 0.8);
      kick(out, t + 0.74); noiseHit(out, t + 0.74, 0.12, 0.5, 'lowpass', 1200);
      return 1.0;
    },
    // The Westminster chime every Japanese school bell plays.
    school_bell(out, t) {
      const seq = [64, 60, 62, 55, 55, 62, 64, 60];
      seq.forEach((m, i) => [1, 2.76, 5.4].forEach((h, k) => tone(out, 'sine', note(m) * h, t + i * 0.7, 1.6, 0.22 / (k + 1), 0.005)));
      return seq.length * 0.7 + 1.5;
    },
    // Six footsteps on a school corridor.
    footsteps(out, t) {
      for (let i = 0; i < 6; i++) { noiseHit(out, t + i * 0.42, 0.09, 0.7, 'lowpass', 600 + (i % 2) * 150); noiseHit(out, t + i * 0.42 + 0.03, 0.05, 0.25, 'bandpass', 2500); }
      return 2.7;
    },
    // A train passing: rumble swelling and fading, wheels clacking in pairs, a short horn.
    train(out, t) {
      const s = A.ctx.createBufferSource(), f = A.ctx.createBiquadFilter(), g = A.ctx.createGain();
      s.buffer = A.noise; s.loop = true; f.type = 'lowpass'; f.frequency.value = 300;
      g.gain.setValueAtTime(0, t); g.gain.linearRampToValueAtTime(0.7, t + 2); g.gain.linearRampToValueAtTime(0, t + 4.5);
      s.connect(f); f.connect(g); g.connect(out); s.start(t); s.stop(t + 4.6);
      for (let k = 0; k < 8; k++) { const c = t + 0.4 + k * 0.5; noiseHit(out, c, 0.06, 0.4, 'bandpass', 1500); noiseHit(out, c + 0.12, 0.06, 0.4, 'bandpass', 1400); }
      [0, 0.04].forEach((d) => { tone(out, 'sawtooth', 370, t + 1.6 + d, 0.6, 0.05); tone(out, 'sawtooth', 440, t + 1.6 + d, 0.6, 0.04); });
      return 4.7;
    },
  };
  // Ambient loops: built once, run until stopped or the scene changes.
  const AMBIENTS = {
    rain(out) {
      const s = A.ctx.createBufferSource(), hp = A.ctx.createBiquadFilter(), lp = A.ctx.createBiquadFilter(), g = A.ctx.createGain();
      s.buffer = A.noise; s.loop = true; hp.type = 'highpass'; hp.frequency.value = 400; lp.type = 'lowpass'; lp.frequency.value = 6000;
      g.gain.value = 0.35; s.connect(hp); hp.connect(lp); lp.connect(g); g.connect(out); s.start();
      const drops = setInterval(() => noiseHit(out, A.ctx.currentTime + Math.random() * 0.1, 0.03, 0.3, 'bandpass', 2000 + Math.random() * 3000), 70);
      return () => { clearInterval(drops); s.stop(); };
    },
    wind(out) {
      const s = A.ctx.createBufferSource(), f = A.ctx.createBiquadFilter(), lfo = A.ctx.createOscillator(), depth = A.ctx.createGain(), g = A.ctx.createGain();
      s.buffer = A.noise; s.loop = true; f.type = 'bandpass'; f.frequency.value = 500; f.Q.value = 1.5;
      lfo.frequency.value = 0.15; depth.gain.value = 300; lfo.connect(depth); depth.connect(f.frequency);
      g.gain.value = 0.5; s.connect(f); f.connect(g); g.connect(out); s.start(); lfo.start();
      return () => { s.stop(); lfo.stop(); };
    },
    crowd(out) {
      // Murmur: noise through two moving vowel formants, plus the odd laugh-like burst.
      const stops = [];
      [[500, 0.11], [1500, 0.07]].forEach(([freq, rate]) => {
        const s = A.ctx.createBufferSource(), f = A.ctx.createBiquadFilter(), lfo = A.ctx.createOscillator(), depth = A.ctx.createGain(), g = A.ctx.createGain();
        s.buffer = A.noise; s.loop = true; f.type = 'bandpass'; f.frequency.value = freq; f.Q.value = 4;
        lfo.frequency.value = rate * 20; depth.gain.value = freq * 0.3; lfo.connect(depth); depth.connect(f.frequency);
        g.gain.value = 0.6; s.connect(f); f.connect(g); g.connect(out); s.start(); lfo.start();
        stops.push(() => { s.stop(); lfo.stop(); });
      });
      const chatter = setInterval(() => noiseHit(out, A.ctx.currentTime, 0.25, 0.12, 'bandpass', 800 + Math.random() * 900), 450);
      return () => { clearInterval(chatter); stops.forEach((f) => f()); };
    },
  };
  A.playSound = (name) => {
    if (!setup()) return;
    if (name === 'none' || name === 'stop') { A.stopAmbient(); return; }
    const out = A.ctx.createGain(); out.connect(A.buses.sound);
    const file = A.story && A.story.audio && A.story.audio.sounds && A.story.audio.sounds[name];
    const ambient = AMBIENT.has(name);
    if (ambient && A.ambient.has(name)) return;  // already looping
    log({ kind: 'sfx', name, ambient, source: file ? 'file' : 'synth' });
    if (file) {
      const entry = { out, stop: () => {} };
      if (ambient) A.ambient.set(name, entry);
      loadBuffer(file).then((buf) => {
        const s = A.ctx.createBufferSource(); s.buffer = buf; s.loop = ambient; s.connect(out); s.start();
        entry.stop = () => s.stop();
        if (!ambient) s.onended = () => out.disconnect();
      }).catch((e) => console.warn(`sound ${name}: ${e.message}`));
      return;
    }
    if (ambient) {
      out.gain.setValueAtTime(0, A.ctx.currentTime); out.gain.linearRampToValueAtTime(1, A.ctx.currentTime + 1.5);
      A.ambient.set(name, { out, stop: AMBIENTS[name](out) });
    } else {
      const make = EFFECTS[name] || ((o, t) => { tone(o, 'sine', 880, t, 0.3, 0.2); return 0.6; });  // an unknown sound: a soft blip
      const dur = make(out, A.ctx.currentTime + 0.02);
      setTimeout(() => out.disconnect(), (dur + 0.5) * 1000);
    }
  };
  // Scene change or end: ambient loops fade out.
  A.stopAmbient = () => {
    if (!A.ctx) return;
    for (const [name, a] of A.ambient) {
      a.out.gain.cancelScheduledValues(A.ctx.currentTime); a.out.gain.setTargetAtTime(0, A.ctx.currentTime, 0.3);
      setTimeout(() => { a.stop(); a.out.disconnect(); }, 1500);
      log({ kind: 'sfx-stop', name });
    }
    A.ambient.clear();
  };

  // ---- voices ----
  // The server speaks each line (espeak-ng or --tts-cmd) and caches it; the request goes out the moment the line
  // is complete, so its audio is usually ready when the reader reaches it.
  A.voiceUrl = (line) => `/api/voice?speaker=${encodeURIComponent(line.type === 'dialogue' ? line.speaker : '')}&text=${encodeURIComponent(line.text)}`;
  A.voiceFor = (line) => {
    const v = A.story && A.story.voices;
    if (!v || !v.available) return false;
    return line.type === 'dialogue' ? v.cast.includes(line.speaker) : line.type === 'narration' && v.narration && A.narration;
  };
  A.prefetchVoice = (line, force) => {
    if (!(A.voicesOn || force) || !A.voiceFor(line) || !setup()) return null;
    const url = A.voiceUrl(line);
    if (!A.voiceCache.has(url)) {
      log({ kind: 'voice-request', speaker: line.speaker || '', text: line.text, writing: A.isWriting() });
      A.voiceCache.set(url, loadBuffer(url));
      if (A.voiceCache.size > 200) A.voiceCache.delete(A.voiceCache.keys().next().value);
    }
    return A.voiceCache.get(url);
  };
  A.stopVoice = () => { if (A.voice) { try { A.voice.stop(); } catch (e) { /* already ended */ } A.voice = null; } };
  // Plays a line's voice (shown line, or a backlog replay); the previous voice stops, as in any VN.
  A.speak = (line, force) => {
    A.stopVoice();
    if (!A.voicesOn && !force) return;
    const pending = A.prefetchVoice(line, force);
    if (!pending) return;
    const token = {}; A.speaking = token;
    pending.then((buf) => {
      if (A.speaking !== token) return;
      const s = A.ctx.createBufferSource(); s.buffer = buf; s.connect(A.buses.voice); s.start();
      A.voice = s; log({ kind: 'voice-play', speaker: line.speaker || '', text: line.text });
    }).catch((e) => console.warn(`voice: ${e.message}`));
  };

  // ---- test hook ----
  // Signal level (RMS) on each bus right now: proves sound is flowing, not just that nodes exist.
  A.levels = () => {
    const out = {};
    for (const [k, an] of Object.entries(A.analysers)) {
      const d = new Float32Array(an.fftSize); an.getFloatTimeDomainData(d);
      out[k] = Math.sqrt(d.reduce((s, x) => s + x * x, 0) / d.length);
    }
    return out;
  };
  A.state = () => ({
    context: A.ctx ? A.ctx.state : 'none',
    music: A.music ? { mood: A.music.name, source: A.music.kind } : null,
    fading: A.fading.map((p) => p.name),
    ambient: [...A.ambient.keys()],
    gains: Object.fromEntries(Object.entries(A.buses).map(([k, g]) => [k, g.gain.value])),
    trace: A.trace.slice(),
  });
  // player.js calls init once the story is known.
  A.init = (opts) => { Object.assign(A, opts); setup(); };
})();
