#include "cache/capture.h"

namespace pgs::cache {

CaptureState ResultCapture::abort(CaptureAbort why) {
  state_ = CaptureState::aborted;
  abort_ = why;
  std::string().swap(bytes_);
  return state_;
}

CaptureState ResultCapture::append(protocol::Bytes whole) {
  if (bytes_.size() + whole.size() > max_bytes_) return abort(CaptureAbort::too_large);
  bytes_.append(reinterpret_cast<const char*>(whole.data()), whole.size());
  return state_;
}

// RowDescription / NoData / DataRow / CommandComplete / ReadyForQuery, checked against the phase.
CaptureState ResultCapture::on_sequenced(char type, protocol::Bytes whole) {
  switch (phase_) {
    case Phase::start:
      if ((type == 'T' && shape_ != ReplyShape::extended) || (type == 'n' && shape_ == ReplyShape::extended_described)) {
        phase_ = Phase::rows;
        return append(whole);
      }
      if (shape_ == ReplyShape::extended_described || (shape_ == ReplyShape::simple && type != 'C')) {
        return abort(CaptureAbort::unexpected_message);
      }
      phase_ = Phase::rows;
      [[fallthrough]];
    case Phase::rows:
      if (type == 'D') {
        ++rows_;
        return append(whole);
      }
      if (type == 'C') {
        phase_ = Phase::after_complete;
        return append(whole);
      }
      return abort(CaptureAbort::unexpected_message);
    case Phase::after_complete:
      if (type != 'Z') return abort(CaptureAbort::unexpected_message);
      if (whole.size() != 6 || (whole[5] != 'I' && whole[5] != 'T')) return abort(CaptureAbort::failed_transaction);
      state_ = CaptureState::complete;
      return state_;
  }
  return abort(CaptureAbort::unexpected_message);
}

CaptureState ResultCapture::feed(char type, protocol::Bytes whole) {
  if (state_ != CaptureState::capturing) return state_;
  switch (type) {
    case 'E': return abort(CaptureAbort::error);
    case 'N': return abort(CaptureAbort::notice);
    case 'G': case 'H': case 'W': case 'd': case 'c': return abort(CaptureAbort::copy);
    case 's': return abort(CaptureAbort::portal_suspended);
    case 'S': return abort(CaptureAbort::parameter_status);
    case 'A': return abort(CaptureAbort::notification);
    case 'T': case 'n': case 'D': case 'C': case 'Z': return on_sequenced(type, whole);
    default: return abort(CaptureAbort::unexpected_message);
  }
}

std::string ResultCapture::take() {
  if (state_ != CaptureState::complete) return {};
  return std::move(bytes_);
}

}  // namespace pgs::cache
