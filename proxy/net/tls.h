// The proxy's TLS is the shared pgs_tls library (tls/tls.h); these names keep proxy code as it was.
#pragma once

#include "tls/tls.h"

namespace pgs::proxy {

using tls::TlsContext;
using tls::TlsPeer;
using tls::TlsSession;

}  // namespace pgs::proxy
