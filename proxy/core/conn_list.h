// An intrusive list of connections: a pool's list of the clients or servers in one state.
//
// Contract: a connection is in at most one list at a time (the one of its state), its hook records
// which, and moving it is O(1) without allocating. Only the connection's set_state() moves it (STYLE.md
// item 5), so that SHOW POOLS and /metrics count lists instead of walking connections. A list does not
// own its members; a member unlinks itself before it is destroyed, and a list destroyed first unlinks
// whatever it still holds. Thread affinity: the owning worker's loop.
#pragma once

#include <cstddef>
#include <vector>

namespace pgs::proxy {

template <class T>
class ConnList;

// Embedded in every member type, reached through `T::list_hook()`.
template <class T>
struct ConnListHook {
  T* prev = nullptr;
  T* next = nullptr;
  ConnList<T>* list = nullptr;  // null: in no list
};

template <class T>
class ConnList {
 public:
  ConnList() = default;
  ConnList(const ConnList&) = delete;
  ConnList& operator=(const ConnList&) = delete;
  ~ConnList() {
    while (head_ != nullptr) remove(head_);
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T* front() const { return head_; }
  T* back() const { return tail_; }
  static T* next(const T* x) { return x->list_hook().next; }
  bool contains(const T* x) const { return x->list_hook().list == this; }

  // Moves `x` to the end of this list, from whichever list held it.
  void push_back(T* x) {
    unlink(x);
    ConnListHook<T>& h = x->list_hook();
    h.list = this;
    h.prev = tail_;
    h.next = nullptr;
    if (tail_ != nullptr) {
      tail_->list_hook().next = x;
    } else {
      head_ = x;
    }
    tail_ = x;
    ++size_;
  }

  // Takes `x` out of this list (it must be a member).
  void remove(T* x) {
    ConnListHook<T>& h = x->list_hook();
    if (h.prev != nullptr) {
      h.prev->list_hook().next = h.next;
    } else {
      head_ = h.next;
    }
    if (h.next != nullptr) {
      h.next->list_hook().prev = h.prev;
    } else {
      tail_ = h.prev;
    }
    h = ConnListHook<T>{};
    --size_;
  }

  // Takes `x` out of the list that holds it, if any.
  static void unlink(T* x) {
    if (ConnList* l = x->list_hook().list) l->remove(x);
  }

  // The members in order, copied: for loops whose body may move or close them.
  std::vector<T*> snapshot() const {
    std::vector<T*> out;
    out.reserve(size_);
    for (T* x = head_; x != nullptr; x = next(x)) out.push_back(x);
    return out;
  }

 private:
  T* head_ = nullptr;
  T* tail_ = nullptr;
  size_t size_ = 0;
};

}  // namespace pgs::proxy
