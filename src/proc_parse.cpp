#include "proc_parse.h"

#include <algorithm>
#include <charconv>
#include <climits>
#include <vector>

namespace aq {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) ++i;
    size_t start = i;
    while (i < s.size() && !is_space(s[i])) ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

std::string_view first_line(std::string_view text) {
  size_t nl = text.find('\n');
  return nl == std::string_view::npos ? text : text.substr(0, nl);
}

}  // namespace

Parsed<uint64_t> parse_u64(std::string_view token) {
  if (token.empty()) return Parsed<uint64_t>::failure("empty number");
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), v);
  if (ec == std::errc::result_out_of_range)
    return Parsed<uint64_t>::failure("number overflows 64 bits: '" + std::string(token) + "'");
  if (ec != std::errc() || ptr != token.data() + token.size())
    return Parsed<uint64_t>::failure("not a number: '" + std::string(token) + "'");
  return Parsed<uint64_t>::success(v);
}

Parsed<CpuTimes> parse_proc_stat(std::string_view text) {
  using R = Parsed<CpuTimes>;
  // The aggregate line comes first and is named exactly "cpu".
  std::string_view rest = text;
  while (!rest.empty()) {
    std::string_view line = first_line(rest);
    rest.remove_prefix(std::min(rest.size(), line.size() + 1));
    auto fields = split_ws(line);
    if (fields.empty() || fields[0] != "cpu") continue;
    // user nice system idle are present on every kernel; the rest came later.
    if (fields.size() < 5) return R::failure("cpu line has fewer than 4 counters");
    CpuTimes t;
    uint64_t* slots[] = {&t.user, &t.nice, &t.system, &t.idle, &t.iowait,
                         &t.irq, &t.softirq, &t.steal, &t.guest, &t.guest_nice};
    for (size_t i = 1; i < fields.size() && i <= 10; ++i) {
      auto n = parse_u64(fields[i]);
      if (!n.ok) return R::failure("cpu counter " + std::to_string(i) + ": " + n.error);
      *slots[i - 1] = n.value;
    }
    // A sum that wraps would make every delta nonsense.
    uint64_t sum = 0;
    for (int i = 0; i < 8; ++i) {
      if (sum + *slots[i] < sum) return R::failure("cpu counters overflow their sum");
      sum += *slots[i];
    }
    return R::success(t);
  }
  return R::failure("no 'cpu' line");
}

Parsed<MemInfo> parse_meminfo(std::string_view text) {
  using R = Parsed<MemInfo>;
  bool have_total = false, have_available = false, have_free = false;
  uint64_t total = 0, available = 0, free = 0, buffers = 0, cached = 0;
  std::string_view rest = text;
  while (!rest.empty()) {
    std::string_view line = first_line(rest);
    rest.remove_prefix(std::min(rest.size(), line.size() + 1));
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = line.substr(0, colon);
    uint64_t* dest = nullptr;
    bool* seen = nullptr;
    if (key == "MemTotal") { dest = &total; seen = &have_total; }
    else if (key == "MemAvailable") { dest = &available; seen = &have_available; }
    else if (key == "MemFree") { dest = &free; seen = &have_free; }
    else if (key == "Buffers") dest = &buffers;
    else if (key == "Cached") dest = &cached;
    if (!dest) continue;
    auto fields = split_ws(line.substr(colon + 1));
    if (fields.empty()) return R::failure(std::string(key) + " has no value");
    if (fields.size() > 1 && fields[1] != "kB")
      return R::failure(std::string(key) + " has unit '" + std::string(fields[1]) + "', expected kB");
    auto n = parse_u64(fields[0]);
    if (!n.ok) return R::failure(std::string(key) + ": " + n.error);
    *dest = n.value;
    if (seen) *seen = true;
  }
  if (!have_total) return R::failure("MemTotal missing");
  if (total == 0) return R::failure("MemTotal is 0");
  MemInfo m;
  m.total_kb = total;
  if (have_available) {
    m.available_kb = available;
  } else if (have_free) {
    // Each value fits in 64 bits but their sum may not: wrapped, it is wrong.
    if (buffers > UINT64_MAX - free || cached > UINT64_MAX - free - buffers)
      return R::failure("MemFree + Buffers + Cached overflows");
    m.available_kb = free + buffers + cached;
    m.available_estimated = true;
  } else {
    return R::failure("neither MemAvailable nor MemFree present");
  }
  if (m.available_kb > m.total_kb) m.available_kb = m.total_kb;
  return R::success(m);
}

Parsed<PidStat> parse_pid_stat(std::string_view text) {
  using R = Parsed<PidStat>;
  // The command name may hold spaces and ')', so it ends at the last ')'.
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open)
    return R::failure("no '(comm)' field");
  auto pid = split_ws(text.substr(0, open));
  if (pid.size() != 1 || !parse_u64(pid[0]).ok) return R::failure("bad pid field");
  auto fields = split_ws(text.substr(close + 1));
  // fields[0] is field 3 (state); utime is 14, stime 15, rss 24.
  constexpr size_t kState = 0, kUtime = 11, kStime = 12, kRss = 21;
  if (fields.size() <= kRss)
    return R::failure("truncated: " + std::to_string(fields.size() + 2) + " fields, need 24");
  if (fields[kState].size() != 1) return R::failure("bad state field");
  PidStat s;
  s.comm = std::string(text.substr(open + 1, close - open - 1));
  s.state = fields[kState][0];
  auto ut = parse_u64(fields[kUtime]);
  if (!ut.ok) return R::failure("utime: " + ut.error);
  auto st = parse_u64(fields[kStime]);
  if (!st.ok) return R::failure("stime: " + st.error);
  if (ut.value + st.value < ut.value) return R::failure("utime + stime overflows");
  std::string_view rss = fields[kRss];
  bool negative = !rss.empty() && rss[0] == '-';
  auto r = parse_u64(negative ? rss.substr(1) : rss);
  if (!r.ok || r.value > static_cast<uint64_t>(INT64_MAX)) return R::failure("rss: " + (r.ok ? std::string("too large") : r.error));
  s.utime = ut.value;
  s.stime = st.value;
  s.rss_pages = negative ? -static_cast<int64_t>(r.value) : static_cast<int64_t>(r.value);
  return R::success(s);
}

Parsed<Statm> parse_statm(std::string_view text) {
  using R = Parsed<Statm>;
  auto fields = split_ws(first_line(text));
  if (fields.size() < 2) return R::failure("truncated: need size and resident");
  auto size = parse_u64(fields[0]);
  if (!size.ok) return R::failure("size: " + size.error);
  auto res = parse_u64(fields[1]);
  if (!res.ok) return R::failure("resident: " + res.error);
  return R::success({size.value, res.value});
}

}  // namespace aq
