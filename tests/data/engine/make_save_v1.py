#!/usr/bin/env python3
"""Writes save_v1.sqlite: a save file in the schema fabula wrote before beats recorded their prompt (schema 1:
PRAGMA user_version 0, no prompt/sampling/model/profile columns). The schema is copied verbatim from
src/engine/save_store.cpp as it was then; the beats are hand-written in the JSON the engine writes.
Run from this directory: python3 make_save_v1.py"""
import json
import os
import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
  id INTEGER PRIMARY KEY,
  story TEXT NOT NULL,
  title TEXT NOT NULL,
  narrator TEXT NOT NULL DEFAULT '',
  head_beat INTEGER,
  initial_state TEXT NOT NULL,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
);
CREATE TABLE IF NOT EXISTS beats (
  id INTEGER PRIMARY KEY,
  session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  parent_id INTEGER REFERENCES beats(id),
  player_choice TEXT NOT NULL,
  choice_index INTEGER NOT NULL,
  text TEXT NOT NULL,
  events TEXT NOT NULL,
  ended INTEGER NOT NULL,
  fallback INTEGER NOT NULL,
  seed INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
);
CREATE INDEX IF NOT EXISTS beats_by_parent ON beats(session_id, parent_id);
CREATE TABLE IF NOT EXISTS choices (
  beat_id INTEGER NOT NULL REFERENCES beats(id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  text TEXT NOT NULL,
  PRIMARY KEY (beat_id, idx)
);
CREATE TABLE IF NOT EXISTS snapshots (
  beat_id INTEGER PRIMARY KEY REFERENCES beats(id) ON DELETE CASCADE,
  state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS slots (
  session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  beat_id INTEGER NOT NULL REFERENCES beats(id),
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  PRIMARY KEY (session_id, name)
);
"""

OPENING = {"place": "classroom", "time": "after school", "cast": ["Hana", "Mio"]}
OPENING_CHOICE = "Ask what everyone is doing after school"
CHOICES = ["Race Hana to the school gate", "Ask Mio what she is sketching", "Stay quiet and listen"]


def main():
    path = "save_v1.sqlite"
    if os.path.exists(path):
        os.remove(path)
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    db.execute("INSERT INTO sessions(id, story, title, narrator, initial_state) VALUES (1, 'sakuragaoka', "
               "'Sakuragaoka After School', 'scripted: play_fixture.jsonl', ?)", (json.dumps(OPENING),))
    first = [
        '[TOOL: background name="classroom" transition="fade"]',
        '[TOOL: sprite character="Hana" expression="smile" position="left"]',
        "Afternoon light slanted across rows of empty desks.",
        '[Hana]: "Hey! You\'re finally here."',
        "[TOOL: choices choices='" + json.dumps(CHOICES) + "']",
    ]
    first_events = [
        {"type": "background", "name": "classroom", "label": "Classroom", "image": "", "transition": "fade"},
        {"type": "sprite", "character": "Hana", "expression": "smile", "position": "left", "image": ""},
        {"type": "narration", "text": "Afternoon light slanted across rows of empty desks."},
        {"type": "dialogue", "speaker": "Hana", "text": "Hey! You're finally here."},
        {"type": "choices", "choices": CHOICES, "fallback": False},
    ]
    state = dict(OPENING, background="classroom", transition="fade",
                 stage=[{"character": "Hana", "expression": "smile", "position": "left"}])
    second = ['[Mio]: "It is the view from the roof."', "[TOOL: end_scene]"]
    second_events = [{"type": "dialogue", "speaker": "Mio", "text": "It is the view from the roof."},
                     {"type": "end_scene"}]
    regenerated = ['[Mio]: "Just clouds."', "[TOOL: end_scene]"]
    regenerated_events = [{"type": "dialogue", "speaker": "Mio", "text": "Just clouds."}, {"type": "end_scene"}]
    rows = [
        (1, None, OPENING_CHOICE, -1, first, first_events, CHOICES, 1, state),
        (2, 1, CHOICES[1], 1, regenerated, regenerated_events, [], 17, dict(state, ended=True)),
        (3, 1, CHOICES[1], 1, second, second_events, [], 24, dict(state, ended=True)),
    ]
    for bid, parent, choice, idx, lines, events, choices, seed, snap in rows:
        ended = 1 if not choices else 0
        db.execute("INSERT INTO beats(id, session_id, parent_id, player_choice, choice_index, text, events, ended, "
                   "fallback, seed, attempts) VALUES (?, 1, ?, ?, ?, ?, ?, ?, 0, ?, 1)",
                   (bid, parent, choice, idx, "\n".join(lines), json.dumps(events), ended, seed))
        for i, c in enumerate(choices):
            db.execute("INSERT INTO choices(beat_id, idx, text) VALUES (?, ?, ?)", (bid, i, c))
        db.execute("INSERT INTO snapshots(beat_id, state) VALUES (?, ?)", (bid, json.dumps(snap)))
    db.execute("UPDATE sessions SET head_beat = 3 WHERE id = 1")
    db.commit()
    db.close()

if __name__ == "__main__":
    main()
