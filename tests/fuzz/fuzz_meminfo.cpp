// /proc/meminfo: any bytes must parse or fail cleanly. A success must agree
// with the MemTotal and MemAvailable lines (the last of each wins), or with
// MemFree + Buffers + Cached when MemAvailable is absent, capped at MemTotal.
#include <algorithm>
#include <optional>

#include "fuzz_check.h"
#include "proc_parse.h"

namespace {

// The value token of the last line whose key is exactly `key`.
std::optional<std::string_view> last_value(std::string_view text, std::string_view key) {
  std::optional<std::string_view> found;
  for (std::string_view line : fuzz::lines(text)) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || line.substr(0, colon) != key)
      continue;
    auto fields = fuzz::tokens(line.substr(colon + 1));
    FUZZ_CHECK(!fields.empty());  // the parser rejects a key with no value
    found = fields[0];
  }
  return found;
}

uint64_t value_or_zero(std::string_view text, std::string_view key) {
  auto v = last_value(text, key);
  if (!v)
    return 0;
  auto n = aq::parse_u64(*v);
  FUZZ_CHECK(n.ok);
  return n.value;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = fuzz::as_text(data, size);
  fuzz::check_u64(aq::parse_u64, text);

  auto r = aq::parse_meminfo(text);
  FUZZ_CHECK(r.ok == r.error.empty());
  if (!r.ok)
    return 0;

  const aq::MemInfo& m = r.value;
  FUZZ_CHECK(m.total_kb > 0);
  FUZZ_CHECK(m.available_kb <= m.total_kb);

  auto total = last_value(text, "MemTotal");
  FUZZ_CHECK(total && fuzz::spells(*total, m.total_kb));

  if (last_value(text, "MemAvailable")) {
    FUZZ_CHECK(!m.available_estimated);
    FUZZ_CHECK(m.available_kb == std::min(m.total_kb, value_or_zero(text, "MemAvailable")));
  } else {
    FUZZ_CHECK(m.available_estimated);
    FUZZ_CHECK(last_value(text, "MemFree"));
    // Summed without wrapping: a wrapped estimate would look like no free memory.
    unsigned __int128 sum = value_or_zero(text, "MemFree");
    sum += value_or_zero(text, "Buffers");
    sum += value_or_zero(text, "Cached");
    FUZZ_CHECK(m.available_kb == std::min<unsigned __int128>(m.total_kb, sum));
  }
  return 0;
}
