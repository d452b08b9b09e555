// A job asked for by hand takes the slot of the millisecond it was asked for, or the next free one:
// both backends create it this way.
#pragma once

#include "store/job.hpp"
#include "store/job_store.hpp"

namespace apsis::store {

// Calls create(slot) for asked_at, asked_at + 1 ms, … until one is not a DuplicateSlot; after a
// thousand (a thousand jobs of one export asked for in one second) the DuplicateSlot goes out.
template <typename Create>
Job create_in_first_free_slot(TimePoint asked_at, Create&& create) {
  constexpr int kTries = 1000;
  for (int i = 0;; ++i) {
    try {
      return create(asked_at + Milliseconds(i));
    } catch (const DuplicateSlot&) {
      if (i + 1 >= kTries) throw;
    }
  }
}

}  // namespace apsis::store
