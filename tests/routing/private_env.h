// The one PrivateReplica of the routing_private_test process: made on first use (a base backup of
// the dev primary), destroyed (stopped and deleted) when the test program ends.
#pragma once

#include "tests/routing/private_replica.h"

namespace pgs::it::routing {

// Throws when it cannot be made; later calls throw the same reason without another attempt.
PrivateReplica& private_replica();

}  // namespace pgs::it::routing
