// Validator: strict judgement of a whole beat (docs/PROTOCOL.md §3) plus the lenient reading the engine uses.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "protocol/line_splitter.h"
#include "protocol/manifest.h"
#include "protocol/parser.h"

namespace fabula::protocol {

// The error (E_*) and warning (W_*) codes of docs/PROTOCOL.md §3, with an example of each there.
enum class Code {
  kToolSyntax,     // E_TOOL_SYNTAX (also: a bracketed dialogue line that needed a repair)
  kToolUnknown,    // E_TOOL_UNKNOWN
  kArgMissing,     // E_ARG_MISSING
  kArgUnknown,     // E_ARG_UNKNOWN
  kEnum,           // E_ENUM
  kChoicesJson,    // E_CHOICES_JSON
  kCastLock,       // E_CAST_LOCK
  kFlow,           // E_FLOW
  kEmpty,          // E_EMPTY
  kLeak,           // E_LEAK
  // warnings
  kHideOffStage,     // W_HIDE_OFFSTAGE: hide of a character not on stage
  kSpeakerOffStage,  // W_SPEAKER_OFFSTAGE: dialogue from a character not on stage
  kUnclosedQuote,    // W_UNCLOSED_QUOTE: dialogue quote recovered by the lenient reader
  kPovSlip,          // W_POV_SLIP: first-person narration ("I", "my", ...)
  kLongLine,         // W_LONG_LINE: a line over 400 characters
};

std::string_view code_name(Code code);  // "E_TOOL_SYNTAX", "W_POV_SLIP", ...

struct Diagnostic {
  Code code;
  int line = 0;  // 1-based physical line where the logical line starts (beat-level: E_EMPTY 1, missing end: last line)
  std::string message;
};

struct ValidateOptions {
  // The locked cast (the scene's cast); empty = the story's whole cast. Names are NFC-normalised.
  std::vector<std::string> locked_cast;
  // Characters already on stage when the beat starts (for the on-stage warnings).
  std::vector<std::string> on_stage;
  int long_line_chars = 400;
};

// One logical line as the engine reads it.
struct BeatLine {
  int line = 0;             // physical start line
  std::string raw;          // the logical line's text
  Line content;             // Blank if the line could not be parsed at all (see parse_error)
  std::vector<Repair> repairs;
  std::string parse_error;  // non-empty: an unrecoverable tool line (engine drops it)
};

struct BeatReport {
  bool valid = true;  // no errors
  std::vector<Diagnostic> errors;
  std::vector<Diagnostic> warnings;
  std::vector<BeatLine> lines;  // every logical line, blank ones included
  // Convenience: did the lenient reader repair anything (any repair on any line, or a parse error)?
  bool needed_repair() const;
  std::vector<std::string> codes() const;  // error code names in order (tests)
};

// Splits, parses and judges a whole beat.
BeatReport validate_beat(std::string_view beat, const Manifest& manifest, const ValidateOptions& options = {});

// Choices of a `choices` value (strict), e.g. for the engine and metrics: item texts, trimmed.
struct ChoicesCheck {
  std::vector<std::string> items;  // texts as offered (string items or object "text"), trimmed
  std::string error;               // empty when valid; otherwise why (E_CHOICES_JSON message)
};
ChoicesCheck check_choices(std::string_view json_text, const ArgSpec& spec);

// First-person narration test used for W_POV_SLIP and the POV-slip rate: a first-person singular
// pronoun (I, I'm, I've, I'd, I'll, me, my, mine, myself) outside quoted speech.
bool is_first_person(std::string_view narration);

// Labels (lower case) a narration line may open with before a ':' without naming a speaker ("Time: dusk"); any
// other capitalised 1-3 word name there must be in the locked cast (E_CAST_LOCK). docs/PROTOCOL.md §3.
const std::vector<std::string>& narration_labels();

}  // namespace fabula::protocol
