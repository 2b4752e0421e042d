// The CLI's size parser: every suffix is a power of 1024, any case; garbage, zero and overflow
// are rejected with a message that names the option and what it accepts.
#include "sizes.hpp"

#include <cstdint>
#include <string>

#include <gtest/gtest.h>

namespace ringbus::cli {
namespace {

std::uint64_t parsed(const char* text) {
  auto r = parse_size(text, "--capacity");
  EXPECT_TRUE(r) << text << ": " << r.error().message();
  return r ? *r : 0;
}

std::string rejected(const char* text) {
  auto r = parse_size(text, "--capacity");
  EXPECT_FALSE(r) << text << " parsed as " << (r ? *r : 0);
  if (r) return {};
  EXPECT_EQ(r.code(), Errc::invalid_argument);
  return r.error().message();
}

TEST(Sizes, PlainBytes) {
  EXPECT_EQ(parsed("1"), 1U);
  EXPECT_EQ(parsed("4096"), 4096U);
  EXPECT_EQ(parsed("4096b"), 4096U);
  EXPECT_EQ(parsed("007"), 7U);
}

TEST(Sizes, EverySuffixIsAPowerOf1024InAnyCase) {
  for (const char* k : {"2K", "2k", "2KB", "2kb", "2Kb", "2KiB", "2kib", "2KIB"}) {
    EXPECT_EQ(parsed(k), 2048U) << k;
  }
  for (const char* m : {"3M", "3m", "3MB", "3mB", "3MiB", "3mib"}) {
    EXPECT_EQ(parsed(m), 3U << 20) << m;
  }
  for (const char* g : {"16G", "16g", "16GB", "16gb", "16GiB", "16gIb"}) {
    EXPECT_EQ(parsed(g), std::uint64_t{16} << 30) << g;
  }
}

TEST(Sizes, LargestValuesFit) {
  EXPECT_EQ(parsed("18446744073709551615"), UINT64_MAX);
  EXPECT_EQ(parsed("17179869183G"), std::uint64_t{17179869183} << 30);
}

TEST(Sizes, RejectsGarbage) {
  for (const char* bad : {"", "K", "abc", "-1", "+1", " 1", "1 ", "1 K", "1.5M", "1,024", "0x10",
                          "1KK", "1iB", "1Ki", "1T", "1TiB", "12abc", "1e6"}) {
    std::string message = rejected(bad);
    EXPECT_NE(message.find("--capacity '" + std::string(bad) + "' is invalid"), std::string::npos)
        << message;
    EXPECT_NE(message.find("K, KB, KiB, M, MB, MiB, G, GB or GiB"), std::string::npos) << message;
  }
  EXPECT_NE(rejected("64X").find("unknown suffix 'X'"), std::string::npos);
  EXPECT_NE(rejected("").find("empty"), std::string::npos);
}

TEST(Sizes, RejectsZero) {
  for (const char* zero : {"0", "00", "0K", "0GiB"}) {
    EXPECT_NE(rejected(zero).find("greater than zero"), std::string::npos) << zero;
  }
}

TEST(Sizes, RejectsOverflow) {
  for (const char* big : {"18446744073709551616", "99999999999999999999999", "17179869184G",
                          "18014398509481984K", "17592186044416M"}) {
    EXPECT_NE(rejected(big).find("too large"), std::string::npos) << big;
  }
}

TEST(Sizes, FormatsInTheLargestExactUnit) {
  EXPECT_EQ(format_size(1000), "1000");
  EXPECT_EQ(format_size(4096), "4KiB");
  EXPECT_EQ(format_size(1536), "1536");
  EXPECT_EQ(format_size(std::uint64_t{3} << 20), "3MiB");
  EXPECT_EQ(format_size(std::uint64_t{16} << 30), "16GiB");
  EXPECT_EQ(format_size((std::uint64_t{1} << 30) + 1024), "1048577KiB");
  for (std::uint64_t v : {std::uint64_t{1}, std::uint64_t{4096}, std::uint64_t{1} << 34}) {
    EXPECT_EQ(parsed(format_size(v).c_str()), v);
  }
}

}  // namespace
}  // namespace ringbus::cli
