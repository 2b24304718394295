// Small offline synthesizer: noise through state-variable filters and decaying sine partials, mixed in float.
#include "voice/effects.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace fabula::voice {
namespace {

struct Mix {
  int rate;
  std::vector<float> buf;
  uint32_t seed = 0x9E3779B9u;

  Mix(int r, double seconds) : rate(r), buf(static_cast<size_t>(seconds * r), 0.0f) {}
  float noise() {
    seed ^= seed << 13;
    seed ^= seed >> 17;
    seed ^= seed << 5;
    return static_cast<float>(seed) / 2147483648.0f - 1.0f;
  }
  // Band-passed noise from t0 (Chamberlin state-variable filter: stable while f < 2 - 1/q, so q >= 1 and the
  // centre stays under rate/8) for dur seconds; env(x) shapes the level over x in 0..1; freq(x) the centre.
  template <class Env, class Freq>
  void noise_band(double t0, double dur, double q, Env env, Freq freq) {
    q = std::max(q, 1.0);
    float low = 0, band = 0;
    size_t a = static_cast<size_t>(t0 * rate), n = static_cast<size_t>(dur * rate);
    for (size_t i = 0; i < n && a + i < buf.size(); ++i) {
      double x = static_cast<double>(i) / n;
      float f = static_cast<float>(2 * std::sin(std::numbers::pi * std::min<double>(freq(x), rate / 8.0) / rate));
      float high = noise() - low - static_cast<float>(1 / q) * band;
      band += f * high;
      low += f * band;
      buf[a + i] += static_cast<float>(env(x)) * band;
    }
  }
  void tone(double t0, double freq, double dur, double peak) {
    size_t a = static_cast<size_t>(t0 * rate), n = static_cast<size_t>(dur * rate);
    for (size_t i = 0; i < n && a + i < buf.size(); ++i) {
      double t = static_cast<double>(i) / rate;
      double env = std::min(1.0, t / 0.005) * std::exp(-4.0 * t / dur);
      buf[a + i] += static_cast<float>(peak * env * std::sin(2 * std::numbers::pi * freq * t));
    }
  }
  void thump(double t0, double peak) {
    size_t a = static_cast<size_t>(t0 * rate);
    double phase = 0;
    for (size_t i = 0; i < static_cast<size_t>(0.25 * rate) && a + i < buf.size(); ++i) {
      double t = static_cast<double>(i) / rate;
      phase += 2 * std::numbers::pi * (45 + 85 * std::exp(-t / 0.04)) / rate;
      buf[a + i] += static_cast<float>(peak * std::exp(-t / 0.06) * std::sin(phase));
    }
  }
  std::vector<int16_t> pcm() const {
    float peak = 1e-6f;
    for (float v : buf) peak = std::max(peak, std::abs(v));
    float gain = std::min(1.0f, 0.8f / peak) * 32767.0f;  // normalise loud mixes, leave quiet ones be
    std::vector<int16_t> out(buf.size());
    for (size_t i = 0; i < buf.size(); ++i) out[i] = static_cast<int16_t>(std::clamp(buf[i] * gain, -32767.0f, 32767.0f));
    return out;
  }
};

double midi(int m) { return 440.0 * std::pow(2.0, (m - 69) / 12.0); }
// Fade in over the first 20%, out over the last 30%: an ambient clip that starts and ends softly.
double swell(double x) { return std::min({1.0, x / 0.2, (1 - x) / 0.3}); }

}  // namespace

std::vector<int16_t> render_effect(std::string_view name, int rate) {
  if (name == "door_slide") {
    Mix m(rate, 1.0);
    m.noise_band(0, 0.75, 3, [](double x) { return 0.6 * std::min(1.0, x * 8) * (x > 0.9 ? (1 - x) * 10 : 1); },
                 [](double x) { return 300 + 600 * x; });
    m.thump(0.74, 0.6);
    return m.pcm();
  }
  if (name == "school_bell") {  // the Westminster chime
    const int seq[] = {64, 60, 62, 55, 55, 62, 64, 60};
    Mix m(rate, 8 * 0.7 + 1.5);
    for (int i = 0; i < 8; ++i)
      for (double h : {1.0, 2.76, 5.4}) m.tone(i * 0.7, midi(seq[i]) * h, 1.6, 0.22 / h);
    return m.pcm();
  }
  if (name == "footsteps") {
    Mix m(rate, 2.7);
    for (int i = 0; i < 6; ++i)
      m.noise_band(i * 0.42, 0.09, 1, [](double x) { return 1.5 * (1 - x) * (1 - x); }, [i](double) { return 500 + 100 * (i % 2); });
    return m.pcm();
  }
  if (name == "train") {
    Mix m(rate, 4.7);
    m.noise_band(0, 4.5, 0.7, [](double x) { return 0.5 * std::sin(std::numbers::pi * x); }, [](double) { return 250; });
    for (int k = 0; k < 8; ++k)
      for (double d : {0.0, 0.12}) m.noise_band(0.4 + k * 0.5 + d, 0.06, 2, [](double x) { return 1 - x; }, [](double) { return 1500; });
    m.tone(1.6, 370, 0.6, 0.1);
    m.tone(1.6, 440, 0.6, 0.08);
    return m.pcm();
  }
  if (name == "rain") {
    Mix m(rate, 6.0);
    m.noise_band(0, 6.0, 0.5, [](double x) { return 0.35 * swell(x); }, [](double) { return 3000; });
    for (double t = 0; t < 5.9; t += 0.07)
      m.noise_band(t, 0.03, 4, [t](double x) { return 0.4 * swell(t / 6.0) * (1 - x); }, [t](double) { return 2000 + std::fmod(t * 7919, 3000); });
    return m.pcm();
  }
  if (name == "wind") {
    Mix m(rate, 6.0);
    m.noise_band(0, 6.0, 1.5, [](double x) { return 0.6 * swell(x); }, [](double x) { return 500 + 300 * std::sin(2 * std::numbers::pi * 0.15 * 6 * x); });
    return m.pcm();
  }
  if (name == "crowd") {
    Mix m(rate, 6.0);
    m.noise_band(0, 6.0, 4, [](double x) { return 0.6 * swell(x); }, [](double x) { return 500 + 150 * std::sin(2 * std::numbers::pi * 2.2 * 6 * x); });
    m.noise_band(0, 6.0, 4, [](double x) { return 0.4 * swell(x); }, [](double x) { return 1500 + 450 * std::sin(2 * std::numbers::pi * 1.4 * 6 * x); });
    return m.pcm();
  }
  Mix m(rate, 0.6);  // an unknown sound: a soft blip
  m.tone(0, 880, 0.3, 0.2);
  return m.pcm();
}

}  // namespace fabula::voice
