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
  while (std::getline(in, field, sep)) out.push_back(field);
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

int64_t ms_to_ns(double ms) { return std::llround(ms * static_cast<double>(kMs)); }

}  // namespace

Scenario Scenario::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  Scenario s;
  s.name_ = base_name(path);
  std::vector<Stall> stalls;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#' || line.rfind("t_ms", 0) == 0) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    const std::vector<std::string> f = split(line, ',');
    if (f.size() != 5) throw std::runtime_error(where + ": expected 5 fields");
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
    if (seg.service_ns <= 0 || stall_ns < 0)
      throw std::runtime_error(where + ": service_ms must be > 0 and stall_ms >= 0");
    if (stall_ns > 0) stalls.push_back({seg.start_ns, seg.start_ns + stall_ns});
    s.segments_.push_back(seg);
  }
  if (s.segments_.size() < 2)
    throw std::runtime_error(path + ": needs at least two rows (the last marks the end)");
  // The last row only marks the end.
  s.duration_ns_ = s.segments_.back().start_ns;
  s.segments_.pop_back();

  // Overlapping stalls stop the consumer for their union.
  for (const Stall& st : stalls) {
    if (!s.stalls_.empty() && st.start_ns <= s.stalls_.back().end_ns)
      s.stalls_.back().end_ns = std::max(s.stalls_.back().end_ns, st.end_ns);
    else
      s.stalls_.push_back(st);
  }
  return s;
}

const Segment& Scenario::at(int64_t t_ns) const {
  auto it = std::upper_bound(segments_.begin(), segments_.end(), t_ns,
                             [](int64_t t, const Segment& seg) { return t < seg.start_ns; });
  return it == segments_.begin() ? segments_.front() : *(it - 1);
}

double Scenario::cpu_average(int64_t from_ns, int64_t to_ns) const {
  if (to_ns <= from_ns) return at(from_ns).cpu_percent;
  const size_t first = static_cast<size_t>(&at(from_ns) - segments_.data());
  double weighted = 0.0;
  for (size_t i = first; i < segments_.size() && segments_[i].start_ns < to_ns; ++i) {
    const int64_t seg_end = i + 1 < segments_.size() ? segments_[i + 1].start_ns : INT64_MAX;
    const int64_t lo = std::max(from_ns, segments_[i].start_ns);
    const int64_t hi = std::min(to_ns, seg_end);
    if (hi > lo) weighted += segments_[i].cpu_percent * static_cast<double>(hi - lo);
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
    if (t + remaining <= it->start_ns) break;
    remaining -= it->start_ns - t;
    t = it->end_ns;
  }
  return t + remaining;
}

}  // namespace aqsim
