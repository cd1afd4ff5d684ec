// /proc/<pid>/stat: any bytes must parse or fail cleanly. The command name
// may hold spaces and parentheses, so a success must take it from between
// the first '(' and the last ')', and count the other fields after that.
#include "fuzz_check.h"
#include "proc_parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = fuzz::as_text(data, size);
  fuzz::check_u64(aq::parse_u64, text);

  auto r = aq::parse_pid_stat(text);
  FUZZ_CHECK(r.ok == r.error.empty());
  if (!r.ok)
    return 0;

  const aq::PidStat& s = r.value;
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  FUZZ_CHECK(open != std::string_view::npos && close != std::string_view::npos);
  FUZZ_CHECK(open < close);
  FUZZ_CHECK(s.comm == text.substr(open + 1, close - open - 1));

  auto pid = fuzz::tokens(text.substr(0, open));
  FUZZ_CHECK(pid.size() == 1 && fuzz::all_digits(pid[0]));

  // After the comm: field 3 is the state; utime 14, stime 15, rss 24.
  auto f = fuzz::tokens(text.substr(close + 1));
  FUZZ_CHECK(f.size() >= 22);
  FUZZ_CHECK(f[0].size() == 1 && f[0][0] == s.state && !fuzz::is_space(s.state));
  FUZZ_CHECK(fuzz::spells(f[11], s.utime));
  FUZZ_CHECK(fuzz::spells(f[12], s.stime));
  FUZZ_CHECK(s.utime + s.stime >= s.utime);

  std::string_view rss = f[21];
  if (s.rss_pages < 0) {
    FUZZ_CHECK(rss[0] == '-');
    FUZZ_CHECK(fuzz::spells(rss.substr(1), 0 - static_cast<uint64_t>(s.rss_pages)));
  } else if (rss[0] == '-') {
    FUZZ_CHECK(s.rss_pages == 0 && fuzz::spells(rss.substr(1), 0));  // "-0"
  } else {
    FUZZ_CHECK(fuzz::spells(rss, static_cast<uint64_t>(s.rss_pages)));
  }
  return 0;
}
