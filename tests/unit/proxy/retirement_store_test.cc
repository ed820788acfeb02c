// RetirementStore: aggregation, atomic persistence, reload, bounds.
#include "proxy/retirement_store.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace mailshim::proxy {
namespace {

TEST(RetirementStore, AggregatesPersistsAndReloads) {
  std::string path = ::testing::TempDir() + "retirement_test.tsv";
  std::remove(path.c_str());
  {
    RetirementStore s(path);
    std::string err;
    ASSERT_TRUE(s.load(err)) << err;  // no file yet is fine
    s.record("alice@example.test", "127.0.0.2", "Windows Live Mail 2012", "plaintext_auth", "legacy-lan", 1, 0, 100);
    s.record("alice@example.test", "127.0.0.2", "Windows Live Mail 2012", "plaintext_auth", "legacy-lan", 2, 1, 200);
    s.record("-", "127.0.0.3", "weird\tfp\nx", "tls.legacy_protocols", "retired-lan", 1, 1, 300);
    ASSERT_TRUE(s.save(err)) << err;
  }
  RetirementStore again(path);
  std::string err;
  ASSERT_TRUE(again.load(err)) << err;
  auto e = again.entries();
  ASSERT_EQ(e.size(), 2u);
  const RetirementEntry* alice = e[0].user == "alice@example.test" ? &e[0] : &e[1];
  EXPECT_EQ(alice->count, 3u);
  EXPECT_EQ(alice->overdue, 1u);
  EXPECT_EQ(alice->first_seen, 100);
  EXPECT_EQ(alice->last_seen, 200);
  const RetirementEntry* other = alice == &e[0] ? &e[1] : &e[0];
  EXPECT_EQ(other->fingerprint, "weird fp x");  // no tabs or newlines survive into the TSV
  std::ifstream raw(path);
  std::string line;
  int lines = 0;
  while (std::getline(raw, line)) ++lines;
  EXPECT_EQ(lines, 3);  // header + 2
}

TEST(RetirementStore, Bounded) {
  RetirementStore s(::testing::TempDir() + "retirement_bound.tsv");
  for (size_t i = 0; i < RetirementStore::kMaxEntries + 10; ++i)
    s.record("u" + std::to_string(i), "10.0.0.1", "fp", "plaintext_auth", "r", 1, 0, static_cast<int64_t>(i));
  EXPECT_LE(s.entries().size(), RetirementStore::kMaxEntries);
  // The newest survive.
  bool newest = false;
  for (const auto& e : s.entries()) newest = newest || e.user == "u" + std::to_string(RetirementStore::kMaxEntries + 9);
  EXPECT_TRUE(newest);
}

}  // namespace
}  // namespace mailshim::proxy
