// The pgsidecar instance that app_proxy_test runs flopods-api through. app_proxy_main.cc starts it
// before any test (its own listen and metrics ports, the dev replica configured, routing.consistency
// "session") and points FLOPODS_TEST_DB at it, so the whole API suite (app_api_test.cc) and the
// proxy-specific tests (app_proxy_test.cc) go through a real proxy with replica routing on.
#pragma once

#include "tests/integration/harness.h"

namespace pgs::app::test {

// The running proxy (in PGS_IT_TARGET=direct mode: the primary's address, no process).
pgs::it::Proxy& proxy_under_test();

}  // namespace pgs::app::test
