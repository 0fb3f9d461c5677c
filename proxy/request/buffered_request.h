// The first request buffered from a client, decoded once before it is given a server: a Query, or
// extended-protocol messages up to and including their Sync, as protocol/frontend views into the
// buffer. The cache's unit check (cache_request.h) and routing's batch scan (batch_scan.h) both read
// it, so the request is not framed and decoded once per reader. Pure.
//
// Lifetime: the views borrow the client's read buffer; use it before the buffer changes (the same
// turn of the event loop).
#pragma once

#include <cstdint>
#include <vector>

#include "protocol/frame.h"
#include "protocol/frontend.h"

namespace pgs::proxy {

struct BufferedRequest {
  std::vector<protocol::frontend::Message> messages;  // in order, up to the first Query or Sync
  bool complete = false;  // the last message is that Query or Sync

  // A simple Query, decoded already by its reader, is a whole request by itself: what
  // decode_buffered_request returns for a buffer that starts with it, without framing it again.
  static BufferedRequest of_query(const protocol::frontend::Message& query) { return {{query}, true}; }
};

// Stops early (complete = false) at a message not all buffered, one that does not frame within
// `max_message_bytes`, or one that does not decode: the session refuses that one when it reaches it.
BufferedRequest decode_buffered_request(protocol::Bytes buffered, uint32_t max_message_bytes);

}  // namespace pgs::proxy
