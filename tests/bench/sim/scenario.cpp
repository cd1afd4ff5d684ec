#include "scenario.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace aqsim {

namespace {

std::string base_name(const std::string& path) {
  std::string name = path.substr(path.find_last_of('/') + 1);
  const std::string ext = ".csv";
  if (name.size() > ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0)
    name.resize(name.size() - ext.size());
  return name;
}

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, sep))
    out.push_back(field);
  return out;
}

// Strict: the whole field must be a finite number.
double number(const std::string& field, const std::string& where) {
  size_t used = 0;
  double value = 0.0;
  try {
    value = std::stod(field, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != field.size() || !std::isfinite(value))
    throw std::runtime_error(where + ": not a number: '" + field + "'");
  return value;
}

int64_t ms_to_ns(double ms) {
  return std::llround(ms * static_cast<double>(kMs));
}

// Sorted intervals, overlapping ones merged into their union.
std::vector<Stall> merged(std::vector<Stall> in) {
  std::sort(in.begin(), in.end(),
            [](const Stall& a, const Stall& b) { return a.start_ns < b.start_ns; });
  std::vector<Stall> out;
  for (const Stall& st : in) {
    if (!out.empty() && st.start_ns <= out.back().end_ns)
      out.back().end_ns = std::max(out.back().end_ns, st.end_ns);
    else
      out.push_back(st);
  }
  return out;
}

// "@source ..." or "@sink ...": a kind, then key=value options.
void directive(const std::string& line, const std::string& where, Source& source, Sink& sink) {
  std::istringstream in(line.substr(1));
  std::string what, kind;
  in >> what >> kind;
  auto option = [&](const std::string& word, std::string& key, double& value) {
    const size_t eq = word.find('=');
    if (eq == std::string::npos)
      throw std::runtime_error(where + ": expected key=value: '" + word + "'");
    key = word.substr(0, eq);
    value = number(word.substr(eq + 1), where);
  };
  std::string word, key;
  double value = 0.0;
  if (what == "source") {
    if (kind != "live" && kind != "nonlive")
      throw std::runtime_error(where + ": @source is live or nonlive");
    source.live = kind == "live";
    while (in >> word) {
      option(word, key, value);
      if (key == "period_ms" && value > 0)
        source.period_ns = ms_to_ns(value);
      else if (key == "drift_ppm" && source.live && value > -1e6)
        source.drift_ppm = std::llround(value);
      else if (key == "frame_ms" && value > 0)
        source.frame_ns = ms_to_ns(value);
      else if (key == "frame_bytes" && value >= 1 && value == std::floor(value))
        source.frame_bytes = static_cast<uint64_t>(value);
      else
        throw std::runtime_error(where + ": bad @source option '" + word + "'");
    }
  } else if (what == "sink") {
    if (kind != "service" && kind != "realtime")
      throw std::runtime_error(where + ": @sink is service or realtime");
    sink.kind = kind == "realtime" ? SinkKind::RealTime : SinkKind::Service;
    while (in >> word) {
      option(word, key, value);
      if (key == "period_ms" && value > 0)
        sink.period_ns = ms_to_ns(value);
      else if (key == "phase_ms" && value >= 0)
        sink.phase_ns = ms_to_ns(value);
      else
        throw std::runtime_error(where + ": bad @sink option '" + word + "'");
    }
  } else {
    throw std::runtime_error(where + ": unknown directive '@" + what + "'");
  }
}

}  // namespace

Scenario Scenario::load(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    throw std::runtime_error(path + ": cannot open");
  Scenario s;
  s.name_ = base_name(path);
  std::vector<Stall> stalls;
  std::vector<Hold> holds;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.empty() || line[0] == '#' || line.rfind("t_ms", 0) == 0)
      continue;
    const std::string where = path + ":" + std::to_string(line_no);
    if (line[0] == '@') {
      directive(line, where, s.source_, s.sink_);
      continue;
    }
    // The sixth column, hold_ms, is optional.
    const std::vector<std::string> f = split(line, ',');
    if (f.size() != 5 && f.size() != 6)
      throw std::runtime_error(where + ": expected 5 or 6 fields");
    Segment seg;
    seg.start_ns = ms_to_ns(number(f[0], where));
    seg.cpu_percent = number(f[1], where);
    seg.mem_percent = number(f[2], where);
    seg.service_ns = ms_to_ns(number(f[3], where));
    const int64_t stall_ns = ms_to_ns(number(f[4], where));
    if (s.segments_.empty() ? seg.start_ns != 0 : seg.start_ns <= s.segments_.back().start_ns)
      throw std::runtime_error(where + ": t_ms must start at 0 and increase");
    if (seg.cpu_percent < 0 || seg.cpu_percent > 100 || seg.mem_percent < 0 ||
        seg.mem_percent > 100)
      throw std::runtime_error(where + ": cpu_pct and mem_pct must be within 0..100");
    const int64_t hold_ns = f.size() == 6 ? ms_to_ns(number(f[5], where)) : 0;
    if (seg.service_ns <= 0 || stall_ns < 0 || hold_ns < 0)
      throw std::runtime_error(where + ": service_ms must be > 0, stall_ms and hold_ms >= 0");
    if (stall_ns > 0)
      stalls.push_back({seg.start_ns, seg.start_ns + stall_ns});
    if (hold_ns > 0)
      holds.push_back({seg.start_ns, seg.start_ns + hold_ns});
    s.segments_.push_back(seg);
  }
  if (s.segments_.size() < 2)
    throw std::runtime_error(path + ": needs at least two rows (the last marks the end)");
  // The last row only marks the end.
  s.duration_ns_ = s.segments_.back().start_ns;
  s.segments_.pop_back();

  // Overlapping stalls stop the consumer for their union; holds likewise.
  s.stalls_ = merged(std::move(stalls));
  s.holds_ = merged(std::move(holds));
  return s;
}

int64_t Scenario::capture_ns(int64_t k) const {
  const int64_t nominal = k * source_.period_ns;
  if (source_.drift_ppm == 0)
    return nominal;
  return std::llround(static_cast<double>(nominal) /
                      (1.0 + static_cast<double>(source_.drift_ppm) / 1e6));
}

int64_t Scenario::arrival_ns(int64_t k) const {
  const int64_t t = capture_ns(k);
  auto it = std::upper_bound(holds_.begin(), holds_.end(), t,
                             [](int64_t v, const Hold& h) { return v < h.end_ns; });
  return it != holds_.end() && it->start_ns <= t ? it->end_ns : t;
}

int64_t Scenario::time_above_mem(int64_t from_ns, int64_t to_ns, double percent) const {
  if (to_ns <= from_ns)
    return 0;
  const size_t first = static_cast<size_t>(&at(from_ns) - segments_.data());
  int64_t total = 0;
  for (size_t i = first; i < segments_.size() && segments_[i].start_ns < to_ns; ++i) {
    if (!(segments_[i].mem_percent > percent))
      continue;
    const int64_t seg_end = i + 1 < segments_.size() ? segments_[i + 1].start_ns : INT64_MAX;
    const int64_t lo = std::max(from_ns, segments_[i].start_ns);
    const int64_t hi = std::min(to_ns, seg_end);
    if (hi > lo)
      total += hi - lo;
  }
  return total;
}

const Segment& Scenario::at(int64_t t_ns) const {
  auto it = std::upper_bound(segments_.begin(), segments_.end(), t_ns,
                             [](int64_t t, const Segment& seg) { return t < seg.start_ns; });
  return it == segments_.begin() ? segments_.front() : *(it - 1);
}

double Scenario::cpu_average(int64_t from_ns, int64_t to_ns) const {
  if (to_ns <= from_ns)
    return at(from_ns).cpu_percent;
  const size_t first = static_cast<size_t>(&at(from_ns) - segments_.data());
  double weighted = 0.0;
  for (size_t i = first; i < segments_.size() && segments_[i].start_ns < to_ns; ++i) {
    const int64_t seg_end = i + 1 < segments_.size() ? segments_[i + 1].start_ns : INT64_MAX;
    const int64_t lo = std::max(from_ns, segments_[i].start_ns);
    const int64_t hi = std::min(to_ns, seg_end);
    if (hi > lo)
      weighted += segments_[i].cpu_percent * static_cast<double>(hi - lo);
  }
  return weighted / static_cast<double>(to_ns - from_ns);
}

int64_t Scenario::resume_at(int64_t t_ns) const {
  auto it = std::upper_bound(stalls_.begin(), stalls_.end(), t_ns,
                             [](int64_t t, const Stall& st) { return t < st.end_ns; });
  return it != stalls_.end() && it->start_ns <= t_ns ? it->end_ns : t_ns;
}

int64_t Scenario::finish_after(int64_t start_ns, int64_t work_ns) const {
  int64_t t = resume_at(start_ns);
  int64_t remaining = work_ns;
  auto it = std::upper_bound(stalls_.begin(), stalls_.end(), t,
                             [](int64_t v, const Stall& st) { return v < st.end_ns; });
  for (; it != stalls_.end(); ++it) {
    if (t + remaining <= it->start_ns)
      break;
    remaining -= it->start_ns - t;
    t = it->end_ns;
  }
  return t + remaining;
}

}  // namespace aqsim
