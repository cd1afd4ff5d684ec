// Shared by the fuzz targets: invariant checks that abort, so libFuzzer
// records the input as a crash and keeps it as an artifact, plus a small
// tokenizer written apart from the parsers so the checks do not share
// their mistakes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#define FUZZ_CHECK(cond)                                                                \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

namespace fuzz {

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

inline bool all_digits(std::string_view s) {
  if (s.empty())
    return false;
  for (char c : s)
    if (c < '0' || c > '9')
      return false;
  return true;
}

// Leading zeros are the only thing a strict decimal parser accepts that
// std::to_string does not give back.
inline std::string_view canonical_digits(std::string_view s) {
  while (s.size() > 1 && s[0] == '0')
    s.remove_prefix(1);
  return s;
}

// The token is plain digits and spells exactly `value`.
inline bool spells(std::string_view token, uint64_t value) {
  return all_digits(token) && canonical_digits(token) == std::to_string(value);
}

// The field separators of /proc text, as the parsers document them.
inline bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

inline std::vector<std::string_view> tokens(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  for (;;) {
    while (i < s.size() && is_space(s[i]))
      ++i;
    if (i == s.size())
      return out;
    size_t start = i;
    while (i < s.size() && !is_space(s[i]))
      ++i;
    out.push_back(s.substr(start, i - start));
  }
}

inline std::vector<std::string_view> lines(std::string_view s) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    size_t nl = s.find('\n');
    out.push_back(s.substr(0, nl));
    if (nl == std::string_view::npos)
      break;
    s.remove_prefix(nl + 1);
  }
  return out;
}

// parse_u64 against its contract: it succeeds exactly on plain digits whose
// value fits in 64 bits, and the value spells the text back.
template <class Parse>
void check_u64(Parse parse_u64, std::string_view text) {
  auto r = parse_u64(text);
  FUZZ_CHECK(r.ok == r.error.empty());
  std::string_view digits = canonical_digits(text);
  bool fits = all_digits(text) &&
              (digits.size() < 20 || (digits.size() == 20 && digits <= "18446744073709551615"));
  FUZZ_CHECK(r.ok == fits);
  if (r.ok)
    FUZZ_CHECK(spells(text, r.value));
}

}  // namespace fuzz
