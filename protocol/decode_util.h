// Internal helpers shared by the decoders (not part of the module's interface).
#pragma once

#include "protocol/byte_reader.h"

// Evaluates a Result-returning expression into `var`, returning its Error from the enclosing
// function on failure. Keeps every bounds-checked read to one line.
#define PGS_TRY(var, expr) \
  auto var = (expr);       \
  if (!var) return var.error()
