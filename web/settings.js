// fabula web player settings: text speed, auto-advance delay, volumes with mute, voices; kept per browser in
// localStorage. The panel lists the keyboard shortcuts too.
'use strict';
(() => {
  const KEY = 'fabula.settings.v1';
  const DEFAULTS = {
    textSpeed: 110,     // characters per second; at the maximum lines appear at once
    autoDelay: 1400,    // ms a finished line stays before auto-advance (plus a little per character)
    music: 0.6, sound: 0.8, voice: 1.0,
    musicMuted: false, soundMuted: false, voiceMuted: false,
    voices: false,      // spoken lines (server-side TTS); off by default
    narrationVoice: true,
  };
  const SHORTCUTS = [
    ['Space / Enter', 'Next line (finish the current one)'], ['1 \u2013 4', 'Pick a choice'], ['H', 'History (backlog)'],
    ['A', 'Auto-advance on / off'], ['S', 'Skip to the choices'], ['O', 'This settings panel'],
    ['M', 'Mute / unmute all sound'], ['V', 'Voices on / off'], ['R', 'Replay the current line\u2019s voice'],
    ['Esc', 'Close a panel'], ['Tab', 'Move between buttons'],
  ];
  const listeners = [];
  function load() {
    try {
      const saved = JSON.parse(localStorage.getItem(KEY) || '{}');
      const out = { ...DEFAULTS };
      for (const k of Object.keys(DEFAULTS)) if (typeof saved[k] === typeof DEFAULTS[k]) out[k] = saved[k];
      return out;
    } catch (e) { return { ...DEFAULTS }; }
  }
  const S = { values: load(), SHORTCUTS, DEFAULTS };
  window.FabulaSettings = S;
  S.get = (k) => S.values[k];
  S.set = (k, v) => {
    S.values[k] = v;
    try { localStorage.setItem(KEY, JSON.stringify(S.values)); } catch (e) { /* private mode: this session only */ }
    listeners.forEach((f) => f(S.values, k));
  };
  S.onChange = (f) => { listeners.push(f); f(S.values, null); };
  // Volumes with mute applied (what the audio buses get).
  S.volumes = () => ({ music: S.values.musicMuted ? 0 : S.values.music, sound: S.values.soundMuted ? 0 : S.values.sound,
    voice: S.values.voiceMuted ? 0 : S.values.voice });
  S.allMuted = () => S.values.musicMuted && S.values.soundMuted && S.values.voiceMuted;
  S.toggleMuteAll = () => { const m = !S.allMuted(); ['musicMuted', 'soundMuted', 'voiceMuted'].forEach((k) => S.set(k, m)); };
  // Milliseconds per character while typing a line; 0 = at once.
  S.typeDelay = () => (S.values.textSpeed >= 300 ? 0 : 1000 / S.values.textSpeed);

  // ---- the panel ----
  let uid = 0;
  function row(body, label) {
    const d = document.createElement('div'); d.className = 'setting';
    const id = `set-${++uid}`;
    const l = document.createElement('label'); l.htmlFor = id; l.textContent = label;
    d.appendChild(l); body.appendChild(d);
    return { d, id };
  }
  function slider(body, key, label, min, max, step, show) {
    const { d, id } = row(body, label);
    const input = document.createElement('input');
    Object.assign(input, { type: 'range', id, min, max, step, value: S.values[key] });
    input.dataset.setting = key;
    const out = document.createElement('output'); out.htmlFor = id; out.textContent = show(S.values[key]);
    input.setAttribute('aria-valuetext', show(S.values[key]));
    input.oninput = () => { const v = Number(input.value); S.set(key, v); out.textContent = show(v); input.setAttribute('aria-valuetext', show(v)); };
    d.append(input, out);
    return d;
  }
  function check(parent, key, label) {
    const w = document.createElement('label'); w.className = 'check';
    const input = document.createElement('input'); input.type = 'checkbox'; input.checked = S.values[key]; input.dataset.setting = key;
    input.onchange = () => S.set(key, input.checked);
    w.append(input, ` ${label}`); parent.appendChild(w);
    return input;
  }
  const pct = (v) => `${Math.round(v * 100)}%`;
  // Fills `body` (the player's panel) with the controls; `voicesAvailable` greys out voices the server can't speak.
  S.render = (body, voicesAvailable) => {
    const h = (t) => { const e = document.createElement('h3'); e.textContent = t; body.appendChild(e); };
    h('Text');
    slider(body, 'textSpeed', 'Text speed', 10, 300, 10, (v) => (v >= 300 ? 'instant' : `${v} characters/s`));
    slider(body, 'autoDelay', 'Auto-advance delay', 0, 5000, 100, (v) => `${(v / 1000).toFixed(1)} s`);
    h('Sound');
    for (const [k, label] of [['music', 'Music volume'], ['sound', 'Sound effects volume'], ['voice', 'Voice volume']]) {
      const d = slider(body, k, label, 0, 1, 0.05, pct);
      check(d, `${k}Muted`, 'mute');
    }
    h('Voices');
    const d = document.createElement('div'); d.className = 'setting';
    const v = check(d, 'voices', 'Speak dialogue lines');
    const n = check(d, 'narrationVoice', 'Speak narration too');
    if (!voicesAvailable) {
      [v, n].forEach((x) => { x.disabled = true; });
      const note = document.createElement('p'); note.className = 'note';
      note.textContent = 'This server has no speech engine (install espeak-ng or start fabula play with --tts-cmd).';
      d.appendChild(note);
    }
    body.appendChild(d);
    h('Keyboard');
    const t = document.createElement('table'); t.className = 'keys';
    for (const [k, what] of SHORTCUTS) {
      const tr = t.insertRow(); const kc = tr.insertCell(); const kbd = document.createElement('kbd'); kbd.textContent = k; kc.appendChild(kbd);
      tr.insertCell().textContent = what;
    }
    body.appendChild(t);
    const reset = document.createElement('button'); reset.className = 'reset'; reset.textContent = 'Reset to defaults';
    reset.onclick = () => { for (const [k, val] of Object.entries(DEFAULTS)) S.set(k, val); body.replaceChildren(); S.render(body, voicesAvailable); };
    body.appendChild(reset);
  };
})();
