// A minimal test registry for the torch-free kernel tests: TEST(name) { ... }
// with CHECK/CHECK_EQ, and a main that prints "N passed, N failed".
#pragma once

#include <cstdio>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/isa.h"

namespace qtorch {
namespace testing {

struct TestCase {
  const char* name;
  std::function<void()> body;
};

std::vector<TestCase>& registry();
// Failures of the running test; a test fails if any CHECK fails.
int& current_failures();

struct Register {
  Register(const char* name, std::function<void()> body) { registry().push_back({name, std::move(body)}); }
};

// Every ISA this machine can run other than the scalar reference.
std::vector<Isa> vector_isas();

// Fresh randomness each run; the seed is printed so a failure can be replayed
// with QTORCH_TEST_SEED.
std::mt19937& rng();

void report_failure(const char* file, int line, const std::string& what);

}  // namespace testing
}  // namespace qtorch

#define QTORCH_CONCAT_INNER(a, b) a##b
#define QTORCH_CONCAT(a, b) QTORCH_CONCAT_INNER(a, b)
#define TEST(name)                                                                        \
  static void name();                                                                     \
  static ::qtorch::testing::Register QTORCH_CONCAT(register_, name)(#name, name);         \
  static void name()

#define CHECK(cond)                                                                       \
  do {                                                                                    \
    if (!(cond)) ::qtorch::testing::report_failure(__FILE__, __LINE__, "CHECK(" #cond ")"); \
  } while (0)

#define CHECK_EQ(a, b)                                                                    \
  do {                                                                                    \
    const auto& qt_a = (a);                                                               \
    const auto& qt_b = (b);                                                               \
    if (!(qt_a == qt_b)) {                                                                \
      std::ostringstream qt_msg;                                                          \
      qt_msg << #a " == " #b " (" << +qt_a << " vs " << +qt_b << ")";                     \
      ::qtorch::testing::report_failure(__FILE__, __LINE__, qt_msg.str());                \
    }                                                                                     \
  } while (0)
