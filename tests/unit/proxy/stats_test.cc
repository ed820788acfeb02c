#include "proxy/stats.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace mailshim::proxy {
namespace {

using Values = std::vector<std::string>;

TEST(StatsFamily, RowsAreFoundByTheirValuesAndKeptInOrder) {
  Family f("sessions", "gauge", "listener,state", "help");
  f.add({"imaps", "relay"});
  f.add({"imaps", "login"}, 3);
  std::string listener = "imaps", state = "relay";  // other storage, same values: the same row
  f.add({listener, state}, 4);
  f.add({"imaps", "relay"}, -2);
  f.add({"imap", "relay"});
  f.add({"imaps"});  // a prefix is a row of its own, not the row it begins
  auto rows = f.rows();
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].values, Values({"imap", "relay"}));
  EXPECT_EQ(rows[0].value, 1);
  EXPECT_EQ(rows[1].values, Values({"imaps"}));
  EXPECT_EQ(rows[1].value, 1);
  EXPECT_EQ(rows[2].values, Values({"imaps", "login"}));
  EXPECT_EQ(rows[2].value, 3);
  EXPECT_EQ(rows[3].values, Values({"imaps", "relay"}));
  EXPECT_EQ(rows[3].value, 3);
}

TEST(StatsFamily, ValuesAreComparedWholeNotJoined) {
  Family f("x", "counter", "a,b", "help");
  f.add({"ab", "c"});
  f.add({"a", "bc"});
  f.add({"", "abc"});
  auto rows = f.rows();
  ASSERT_EQ(rows.size(), 3u);
  for (const auto& r : rows) EXPECT_EQ(r.value, 1);
}

TEST(StatsFamily, ConcurrentAddsAreAllCounted) {
  Family f("x", "counter", "listener,result", "help");
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&f, t] {
      for (int i = 0; i < 2000; ++i) f.add({"l" + std::to_string(i % 3), t % 2 ? "ok" : "failed"});
    });
  for (auto& t : ts) t.join();
  int64_t sum = 0;
  for (const auto& r : f.rows()) sum += r.value;
  EXPECT_EQ(sum, 8000);
  EXPECT_EQ(f.rows().size(), 6u);
}

}  // namespace
}  // namespace mailshim::proxy
