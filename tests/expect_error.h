// expect_error<E>(call, needles): call must throw E (not another type, not nothing) with a message
// containing every needle.
#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <string>
#include <utility>
#include <vector>

namespace emb::testing {

template <typename E, typename Fn>
void expect_error(Fn&& call, const std::vector<std::string>& needles) {
  try {
    call();
    ADD_FAILURE() << "no exception; expected one containing \"" << needles.front() << "\"";
  } catch (const E& e) {
    const std::string message = e.what();
    for (const std::string& needle : needles) {
      EXPECT_NE(message.find(needle), std::string::npos)
          << "message \"" << message << "\" lacks \"" << needle << "\"";
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

// (Also picked for a braced single needle, {"..."}.)
template <typename E, typename Fn>
void expect_error(Fn&& call, const char* needle) {
  expect_error<E>(std::forward<Fn>(call), std::vector<std::string>{needle});
}

}  // namespace emb::testing
