// Voice layer: WAV writer/parser, story voice specs, espeak-ng synthesis, --tts-cmd, and the per-line cache.
#include <filesystem>
#include <cmath>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "voice/speech_service.h"
#include "voice/system_player.h"
#include "voice/tts.h"
#include "voice/voice_spec.h"
#include "voice/wav.h"

namespace fabula::voice {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

TEST(Wav, RoundTripsPcm16) {
  std::vector<int16_t> s = {0, 1000, -1000, 32767, -32768};
  std::string wav = wav_from_pcm16(s, 22050);
  ASSERT_EQ(wav.size(), 44u + 10u);
  EXPECT_EQ(wav.substr(0, 4), "RIFF");
  EXPECT_EQ(wav.substr(8, 8), "WAVEfmt ");
  auto info = parse_wav(wav);
  ASSERT_TRUE(info.ok()) << info.error().to_string();
  EXPECT_EQ(info->channels, 1);
  EXPECT_EQ(info->sample_rate, 22050);
  EXPECT_EQ(info->bits_per_sample, 16);
  EXPECT_EQ(info->data_offset, 44u);
  EXPECT_EQ(info->data_bytes, 10u);
  EXPECT_EQ(static_cast<unsigned char>(wav[44 + 6]), 0xFF);  // 32767 little-endian
}

TEST(Wav, RejectsWhatIsNotWav) {
  EXPECT_NE(parse_wav("hello").error().message.find("too short"), std::string::npos);
  EXPECT_NE(parse_wav("OggS0000WAVEfmt ").error().message.find("not a RIFF/WAVE"), std::string::npos);
  std::string wav = wav_from_pcm16({1, 2, 3, 4}, 8000);
  std::string cut = wav.substr(0, 40);  // header cut inside the data chunk's header
  EXPECT_FALSE(parse_wav(cut).ok());
  std::string lying = wav;
  lying[40] = 100;  // data chunk claims 100 bytes, 8 follow
  EXPECT_NE(parse_wav(lying).error().message.find("only 8 follow"), std::string::npos);
  std::string streamed = wav;  // a pipe writer leaves 0xFFFFFFFF: data runs to the end
  for (int i = 40; i < 44; ++i) streamed[i] = '\xFF';
  EXPECT_EQ(parse_wav(streamed)->data_bytes, 8u);
}

TEST(VoiceSpec, ParsesAndChecksRanges) {
  auto v = voice_spec_from_json(json{{"voice", "en-us"}, {"variant", "f3"}, {"pitch", 70}, {"rate", 190}}, "t");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->espeak_name(), "en-us+f3");
  EXPECT_EQ(v->key(), "en-us+f3|p70|r190");
  auto bad = voice_spec_from_json(json{{"pitch", 140}}, "story: cast[0].tts");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "story: cast[0].tts: pitch: 140 is outside [0, 100]");
  EXPECT_FALSE(voice_spec_from_json(json{{"voice", "en; rm -rf /"}}, "t").ok());
  EXPECT_NE(voice_spec_from_json(json{{"speed", 1}}, "t").error().message.find("unknown field \"speed\""), std::string::npos);
}

TEST(VoiceSpec, StoryVoicesGiveEveryCastMemberAVoice) {
  json story = {{"cast", {{{"name", "Hana"}, {"tts", {{"variant", "f3"}, {"pitch", 72}}}}, {{"name", "Ren"}}, {{"name", "Mio"}}}}};
  auto v = story_voices_from_json(story, "story.json");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->find("Hana")->pitch, 72);
  ASSERT_TRUE(v->find("Ren").has_value());
  EXPECT_NE(v->find("Ren")->key(), v->find("Mio")->key());  // defaults differ by name
  EXPECT_FALSE(v->find("narration").has_value());          // no narration_tts: narration is silent
  EXPECT_FALSE(v->find("Nobody").has_value());
  story["narration_tts"] = {{"voice", "en"}, {"rate", 160}};
  EXPECT_EQ(story_voices_from_json(story, "s")->find("")->rate, 160);
}

TEST(VoiceSpec, TheDemoStoryDeclaresVoices) {
  std::ifstream f(std::string(FABULA_SOURCE_DIR) + "/stories/sakuragaoka/story.json");
  auto v = story_voices_from_json(json::parse(f), "sakuragaoka");
  ASSERT_TRUE(v.ok()) << v.error().to_string();
  EXPECT_EQ(v->cast.size(), 4u);
  EXPECT_TRUE(v->narration.has_value());
}

StoryVoices two_voices() {
  StoryVoices v;
  v.cast["Hana"] = VoiceSpec{"en-us", "f3", 70, 190};
  v.cast["Ren"] = VoiceSpec{"en", "m3", 40, 160};
  v.narration = VoiceSpec{"en", "", 45, 165};
  return v;
}

TEST(EspeakTts, SpeaksALineAsWav) {
  if (!espeak_compiled_in()) FAIL() << "built without libespeak-ng: install libespeak-ng-dev and espeak-ng-data (scripts/setup does) and rebuild";
  auto engine = make_espeak_tts();
  ASSERT_TRUE(engine.ok()) << engine.error().to_string();
  auto wav = (*engine)->synthesize("Hey! You're finally here.", two_voices().cast["Hana"], "Hana");
  ASSERT_TRUE(wav.ok()) << wav.error().to_string();
  auto info = parse_wav(*wav);
  ASSERT_TRUE(info.ok()) << info.error().to_string();
  EXPECT_EQ(info->channels, 1);
  EXPECT_EQ(info->bits_per_sample, 16);
  EXPECT_GT(info->sample_rate, 8000);
  EXPECT_GT(info->seconds(), 0.5);  // a short sentence at 190 wpm
  EXPECT_LT(info->seconds(), 10.0);
  // Not silence: some sample is loud.
  int peak = 0;
  for (size_t i = info->data_offset; i + 1 < wav->size(); i += 2)
    peak = std::max(peak, std::abs(static_cast<int16_t>(static_cast<unsigned char>((*wav)[i]) | ((*wav)[i + 1] << 8))));
  EXPECT_GT(peak, 1000);
  // A different voice gives different audio for the same text.
  auto ren = (*engine)->synthesize("Hey! You're finally here.", two_voices().cast["Ren"], "Ren");
  ASSERT_TRUE(ren.ok());
  EXPECT_NE(*ren, *wav);
}

TEST(SpeechService, CachesEachLineAndReplaysFromTheCache) {
  if (!espeak_compiled_in()) FAIL() << "built without libespeak-ng: install libespeak-ng-dev and espeak-ng-data (scripts/setup does) and rebuild";
  auto engine = make_espeak_tts();
  ASSERT_TRUE(engine.ok()) << engine.error().to_string();
  SpeechService svc(std::move(*engine), two_voices());
  auto first = svc.speak("Hana", "Race you to the gate!");
  ASSERT_TRUE(first.ok()) << first.error().to_string();
  EXPECT_FALSE(first->cache_hit);
  EXPECT_TRUE(parse_wav(*first->wav).ok());
  auto again = svc.speak("Hana", "Race you to the gate!");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->cache_hit);
  EXPECT_EQ(again->wav.get(), first->wav.get());  // the same bytes, not a second synthesis
  auto ren = svc.speak("Ren", "Race you to the gate!");  // same text, other voice: its own entry
  EXPECT_FALSE(ren->cache_hit);
  auto narration = svc.speak("", "Petals drift across the path.");
  ASSERT_TRUE(narration.ok());
  SpeechStats st = svc.stats();
  EXPECT_EQ(st.misses, 3u);
  EXPECT_EQ(st.hits, 1u);
  EXPECT_EQ(st.cached_lines, 3u);
  EXPECT_EQ(svc.speak("Kaito", "hi").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(svc.speak("Hana", "").error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(svc.speak("Hana", std::string(5000, 'a')).error().code, ErrorCode::kInvalidArgument);
}

// A stand-in engine that counts syntheses, for the cache bound.
class CountingTts : public TtsEngine {
 public:
  int calls = 0;
  Result<std::string> synthesize(std::string_view text, const VoiceSpec&, std::string_view) override {
    ++calls;
    return wav_from_pcm16(std::vector<int16_t>(1000 * text.size(), 1), 8000);
  }
  std::string describe() const override { return "counting"; }
};

TEST(SpeechService, EvictsLeastRecentlyUsedLinesPastTheBound) {
  auto engine = std::make_unique<CountingTts>();
  CountingTts* counter = engine.get();
  SpeechService svc(std::move(engine), two_voices(), 5000);  // room for two 2 KB lines
  ASSERT_TRUE(svc.speak("Hana", "a").ok());
  ASSERT_TRUE(svc.speak("Hana", "b").ok());
  ASSERT_TRUE(svc.speak("Hana", "a").ok());  // a is now the most recent
  ASSERT_TRUE(svc.speak("Hana", "c").ok());  // evicts b
  EXPECT_EQ(counter->calls, 3);
  EXPECT_TRUE(svc.speak("Hana", "a")->cache_hit);
  EXPECT_FALSE(svc.speak("Hana", "b")->cache_hit);
  EXPECT_LE(svc.stats().cached_bytes, 5000u);
}

struct TempFolder {
  fs::path path = fs::temp_directory_path() / ("fabula-voice-test-" + std::to_string(::getpid()));
  TempFolder() { fs::create_directories(path); }
  ~TempFolder() { fs::remove_all(path); }
};

TEST(CommandTts, PassesTextOnStdinAndVoiceInTheEnvironment) {
  TempFolder tmp;
  std::string wav_path = (tmp.path / "tone.wav").string();
  std::ofstream(wav_path, std::ios::binary) << wav_from_pcm16({5, 6, 7}, 16000);
  // Records stdin and the voice, then writes the WAV to stdout.
  std::string cmd = "cat > '" + (tmp.path / "text").string() + "'; echo \"$FABULA_SPEAKER $FABULA_VOICE $FABULA_PITCH $FABULA_RATE\" > '" +
                    (tmp.path / "env").string() + "'; cat '" + wav_path + "'";
  auto tts = make_command_tts(cmd);
  auto wav = tts->synthesize("Okay, new rule.", VoiceSpec{"en-us", "f3", 70, 190}, "Hana");
  ASSERT_TRUE(wav.ok()) << wav.error().to_string();
  EXPECT_EQ(parse_wav(*wav)->sample_rate, 16000);
  std::ifstream text(tmp.path / "text"), env(tmp.path / "env");
  std::string t((std::istreambuf_iterator<char>(text)), {}), e;
  std::getline(env, e);
  EXPECT_EQ(t, "Okay, new rule.");
  EXPECT_EQ(e, "Hana en-us+f3 70 190");
}

TEST(CommandTts, ReadsTheOutFileAndReportsFailures) {
  TempFolder tmp;
  std::string wav_path = (tmp.path / "tone.wav").string();
  std::ofstream(wav_path, std::ios::binary) << wav_from_pcm16({5, 6, 7, 8}, 24000);
  auto to_file = make_command_tts("cat >/dev/null; cp '" + wav_path + "' {out}");
  auto wav = to_file->synthesize("hi", VoiceSpec{}, "Ren");
  ASSERT_TRUE(wav.ok()) << wav.error().to_string();
  EXPECT_EQ(parse_wav(*wav)->sample_rate, 24000);

  auto failing = make_command_tts("echo 'no model loaded' >&2; exit 3");
  auto e = failing->synthesize("hi", VoiceSpec{}, "Ren");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("exit 3"), std::string::npos);
  EXPECT_NE(e.error().message.find("no model loaded"), std::string::npos);

  auto not_wav = make_command_tts("cat");  // echoes the text back
  EXPECT_NE(not_wav->synthesize("hello there", VoiceSpec{}, "Ren").error().message.find("did not write a WAV"),
            std::string::npos);
  auto slow = make_command_tts("sleep 5", 1);
  EXPECT_EQ(slow->synthesize("hi", VoiceSpec{}, "Ren").error().code, ErrorCode::kCancelled);
}

}  // namespace
}  // namespace fabula::voice

namespace fabula::voice {
namespace {

// The terminal player's speaker hands each line's WAV to the system player (here a script that keeps a copy).
TEST(LineSpeaker, HandsTheLinesWavToTheSystemPlayer) {
  TempFolder tmp;
  std::string player = (tmp.path / "player.sh").string();
  // Copy, then rename: the test waits for heard.wav to exist, and cp creates it before it has written the bytes.
  std::ofstream(player) << "#!/bin/sh\ncp \"$1\" '" << (tmp.path / "heard.tmp").string() << "' && mv '"
                        << (tmp.path / "heard.tmp").string() << "' '" << (tmp.path / "heard.wav").string() << "'\n";
  fs::permissions(player, fs::perms::owner_all);
  auto engine = std::make_unique<CountingTts>();
  SpeechService svc(std::move(engine), two_voices());
  {
    LineSpeaker speaker(svc, player);
    speaker.say("Ren", "abc");
    for (int i = 0; i < 500 && !fs::exists(tmp.path / "heard.wav"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::ifstream heard(tmp.path / "heard.wav", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(heard)), {});
  auto info = parse_wav(bytes);
  ASSERT_TRUE(info.ok()) << "the player got no WAV";
  EXPECT_EQ(info->data_bytes, 2u * 3000u);  // CountingTts: 1000 samples per character of "abc"
}

TEST(LineSpeaker, FindsNoPlayerOnAnEmptyPath) {
  const char* old = std::getenv("PATH");
  std::string saved = old ? old : "";
  setenv("PATH", "/nonexistent", 1);
  EXPECT_EQ(find_system_player(), "");
  setenv("PATH", saved.c_str(), 1);
}

}  // namespace
}  // namespace fabula::voice

#include "voice/effects.h"

namespace fabula::voice {
namespace {

double rms(const std::vector<int16_t>& s, size_t from, size_t to) {
  double acc = 0;
  for (size_t i = from; i < to; ++i) acc += static_cast<double>(s[i]) * s[i];
  return std::sqrt(acc / std::max<size_t>(1, to - from));
}

// Every sound of the demo manifest renders to audible audio of a sensible length; ambient clips fade in and out.
TEST(Effects, EveryManifestSoundIsAudible) {
  for (const char* name : {"door_slide", "school_bell", "footsteps", "train", "rain", "crowd", "wind"}) {
    auto s = render_effect(name, 22050);
    double seconds = s.size() / 22050.0;
    EXPECT_GT(seconds, 0.5) << name;
    EXPECT_LT(seconds, 10.0) << name;
    EXPECT_GT(rms(s, 0, s.size()), 300.0) << name << " is nearly silent";
  }
  auto rain = render_effect("rain", 22050);
  EXPECT_LT(rms(rain, 0, 500), rms(rain, rain.size() / 2 - 5000, rain.size() / 2 + 5000) / 4) << "rain fades in";
  EXPECT_NE(render_effect("school_bell"), render_effect("door_slide"));
  EXPECT_GT(render_effect("not_a_sound").size(), 0u);  // a blip, not an error
}

TEST(EffectPlayer, HandsEachEffectToTheSystemPlayer) {
  TempFolder tmp;
  std::string player = (tmp.path / "player.sh").string();
  // Copied under a temporary name, then renamed: a .heard file is always whole, even when the player's destructor
  // stops a copy that is still running (under load the count below could see a half-written file).
  const std::string out = tmp.path.string() + "/$(basename \"$1\")";
  std::ofstream(player) << "#!/bin/sh\ncp \"$1\" \"" << out << ".part\" && mv \"" << out << ".part\" \"" << out << ".heard\"\n";
  fs::permissions(player, fs::perms::owner_all);
  {
    EffectPlayer effects(player);
    effects.play("door_slide");
    effects.play("rain");
    for (int i = 0; i < 500; ++i) {
      int n = 0;
      for (const auto& e : fs::directory_iterator(tmp.path)) n += e.path().extension() == ".heard";
      if (n == 2) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  int heard = 0;
  for (const auto& e : fs::directory_iterator(tmp.path)) {
    if (e.path().extension() != ".heard") continue;
    std::ifstream f(e.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), {});
    EXPECT_TRUE(parse_wav(bytes).ok());
    ++heard;
  }
  EXPECT_EQ(heard, 2);
}

}  // namespace
}  // namespace fabula::voice

#include "voice/story_audio.h"

namespace fabula::voice {
namespace {

TEST(StoryAudio, ChecksTheFilesAPackageShips) {
  TempFolder tmp;
  fs::create_directories(tmp.path / "audio");
  std::ofstream(tmp.path / "audio/tense.wav") << wav_from_pcm16({1, 2}, 8000);
  std::vector<std::string> music = {"calm", "tense"}, sounds = {"rain"};
  auto check = [&](const json& audio) { return check_story_audio(json{{"audio", audio}}, tmp.path.string(), music, sounds); };
  EXPECT_TRUE(check_story_audio(json::object(), tmp.path.string(), music, sounds).ok());  // none shipped
  EXPECT_TRUE(check(json{{"music", {{"tense", "audio/tense.wav"}}}}).ok());
  EXPECT_NE(check(json{{"music", {{"calm", "audio/calm.ogg"}}}}).error().message.find("no file audio/calm.ogg"), std::string::npos);
  EXPECT_NE(check(json{{"music", {{"happy", "audio/tense.wav"}}}}).error().message.find("not in the story's music list"),
            std::string::npos);
  EXPECT_NE(check(json{{"sounds", {{"rain", "../../etc/passwd"}}}}).error().message.find("inside the story package"),
            std::string::npos);
  EXPECT_NE(check(json{{"voices", json::object()}}).error().message.find("story.json: audio.voices: is not known"), std::string::npos);
}

}  // namespace
}  // namespace fabula::voice
