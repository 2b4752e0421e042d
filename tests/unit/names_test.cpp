// Topic, group and reader name rules.
#include <string>

#include <gtest/gtest.h>

#include "ringbus/topic.hpp"

namespace ringbus {
namespace {

TEST(Names, AcceptsLettersDigitsDotUnderscoreDash) {
  EXPECT_TRUE(validate_name("orders"));
  EXPECT_TRUE(validate_name("a"));
  EXPECT_TRUE(validate_name("Orders.EU-west_2"));
  EXPECT_TRUE(validate_name(std::string(200, 'x')));
  EXPECT_TRUE(validate_name("a..b"));
}

TEST(Names, RejectsEmptyTooLongDotsAndOtherCharacters) {
  for (std::string bad : {std::string(), std::string(201, 'x'), std::string("."), std::string(".."),
                          std::string(".hidden"), std::string("a/b"), std::string("a b"),
                          std::string("caf\xc3\xa9"), std::string("x\n"), std::string("a*")}) {
    auto r = validate_name(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.code(), Errc::invalid_argument);
    EXPECT_NE(r.error().message().find("allowed: 1-200 characters"), std::string::npos)
        << r.error().message();
  }
}

TEST(Names, MessageNamesTheOffendingCharacter) {
  auto r = validate_name("a/b");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("'/'"), std::string::npos) << r.error().message();
}

}  // namespace
}  // namespace ringbus
