// ResultCapture: accumulates the backend messages of one statement's reply while the proxy forwards
// them to the client, so that a miss can be stored and a later hit replays the same bytes. Pure.
//
// What is stored (and replayed on a hit), by ReplyShape (cache/key.h):
//   simple:              RowDescription, DataRow*, CommandComplete
//   extended_described:  RowDescription | NoData, DataRow*, CommandComplete
//   extended:            DataRow*, CommandComplete
// Never stored: ParseComplete, BindComplete (before the capture starts), ReadyForQuery (ends it). On a
// hit the proxy writes [ParseComplete if the client sent Parse] [BindComplete if it sent Bind], the
// stored bytes, then ReadyForQuery with the session's status: byte-identical to Postgres' own reply.
//
// Feeding contract: every backend message of the reply, in order, starting with the first one after
// BindComplete (extended) or the first reply to the Query (simple), up to and including ReadyForQuery.
// The capture aborts (nothing to store) on ErrorResponse, NoticeResponse, any Copy*, PortalSuspended,
// ParameterStatus, NotificationResponse, EmptyQueryResponse or any message out of the sequence above,
// on ReadyForQuery 'E', and when the stored bytes would exceed max_result_bytes.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "cache/key.h"
#include "protocol/byte_reader.h"

namespace pgs::cache {

#define PGS_CACHE_CAPTURE_ABORTS(X)                                                       \
  X(none) X(error) X(notice) X(copy) X(portal_suspended) X(parameter_status)              \
  X(notification) X(too_large) X(unexpected_message) X(failed_transaction)

enum class CaptureAbort : uint8_t {
#define PGS_X(e) e,
  PGS_CACHE_CAPTURE_ABORTS(PGS_X)
#undef PGS_X
};
inline constexpr std::array kCaptureAbortNames = {
#define PGS_X(e) std::string_view{#e},
    PGS_CACHE_CAPTURE_ABORTS(PGS_X)
#undef PGS_X
};
inline constexpr std::string_view capture_abort_name(CaptureAbort a) {
  return kCaptureAbortNames[static_cast<size_t>(a)];
}

enum class CaptureState : uint8_t { capturing, complete, aborted };

class ResultCapture {
 public:
  ResultCapture(ReplyShape shape, uint32_t max_result_bytes) : shape_(shape), max_bytes_(max_result_bytes) {}

  // One backend message: its type byte and its whole bytes (protocol::Frame::whole: type, length,
  // body). Returns the state after it; once complete or aborted, further messages change nothing.
  CaptureState feed(char type, protocol::Bytes whole);

  CaptureState state() const { return state_; }
  CaptureAbort abort_reason() const { return abort_; }
  ReplyShape shape() const { return shape_; }
  uint32_t rows() const { return rows_; }
  size_t size() const { return bytes_.size(); }
  // The stored messages, once complete (moves them out; empty otherwise).
  std::string take();

 private:
  enum class Phase : uint8_t { start, rows, after_complete };
  CaptureState abort(CaptureAbort why);
  CaptureState append(protocol::Bytes whole);
  CaptureState on_sequenced(char type, protocol::Bytes whole);

  ReplyShape shape_;
  uint32_t max_bytes_;
  Phase phase_ = Phase::start;
  CaptureState state_ = CaptureState::capturing;
  CaptureAbort abort_ = CaptureAbort::none;
  uint32_t rows_ = 0;
  std::string bytes_;
};

}  // namespace pgs::cache
