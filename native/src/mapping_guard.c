/* Memory-mapped weight files that are truncated while mapped. Reading a page of a file mapping past the file's (new) end
   raises SIGBUS, which kills the process. osn_mapping_guard_add registers a mapping's address range; a SIGBUS inside a
   registered range maps zero pages over the rest of the range, counts the fault and lets the read go on (reading zeros),
   so that the caller can fail the work cleanly once osn_mapping_guard_faults says the range faulted. A SIGBUS anywhere
   else goes to the handler that was installed before (the .NET runtime's, or the default action). */
#include <stdatomic.h>

#include "osn_internal.h"

#define GUARD_CHECK(guard) \
  OSN_CHECK((guard) >= 0 && (guard) < OSN_MAPPING_GUARDS, "guard %d is not one of osn_mapping_guard_add's", (int) (guard))

#if defined(_WIN32)

/* Windows refuses to truncate a mapped file: there is nothing to guard. */
int32_t osn_mapping_guard_add(const void* address, size_t bytes, int32_t* guard_out) {
  OSN_CHECK(address != NULL && bytes > 0 && guard_out != NULL, "osn_mapping_guard_add: an address, a length and guard_out are required");
  *guard_out = 0;
  return osn_ok();
}
int32_t osn_mapping_guard_remove(int32_t guard) {
  GUARD_CHECK(guard);
  return osn_ok();
}
int32_t osn_mapping_guard_faults(int32_t guard, int64_t* faults_out) {
  GUARD_CHECK(guard);
  OSN_CHECK(faults_out != NULL, "osn_mapping_guard_faults: faults_out is NULL");
  *faults_out = 0;
  return osn_ok();
}

#else

#  include <pthread.h>
#  include <signal.h>
#  include <string.h>
#  include <sys/mman.h>
#  include <unistd.h>

typedef struct guard_slot {
  _Atomic(uintptr_t) start; /* 0: a free slot */
  _Atomic(size_t) bytes;
  _Atomic(int64_t) faults;
} guard_slot;

static guard_slot guards[OSN_MAPPING_GUARDS];
/* Slots below this have been used: the handler looks no further. */
static _Atomic(int32_t) guards_used;
static pthread_mutex_t guards_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction previous_action;
static int installed;
static uintptr_t page_size;

static void on_sigbus(int signal_number, siginfo_t* info, void* context) {
  const uintptr_t address = (uintptr_t) info->si_addr;
  const int32_t used = atomic_load_explicit(&guards_used, memory_order_acquire);
  for (int32_t i = 0; i < used; i++) {
    const uintptr_t start = atomic_load_explicit(&guards[i].start, memory_order_acquire);
    const size_t bytes = atomic_load_explicit(&guards[i].bytes, memory_order_acquire);
    if (start == 0 || address < start || address - start >= bytes) continue;
    /* The file ends before this page now, so it ends before every later page too: zeros from here to the end. */
    const uintptr_t page = address & ~(page_size - 1);
    if (mmap((void*) page, start + bytes - page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) break;
    atomic_fetch_add_explicit(&guards[i].faults, 1, memory_order_release);
    return; /* the faulting read runs again, on the zero pages */
  }
  if (previous_action.sa_flags & SA_SIGINFO) {
    if (previous_action.sa_sigaction != NULL) previous_action.sa_sigaction(signal_number, info, context);
  } else if (previous_action.sa_handler == SIG_DFL || previous_action.sa_handler == SIG_IGN) {
    /* The fault repeats when this returns, and the default action ends the process as it would have. */
    signal(SIGBUS, SIG_DFL);
  } else {
    previous_action.sa_handler(signal_number);
  }
}

int32_t osn_mapping_guard_add(const void* address, size_t bytes, int32_t* guard_out) {
  OSN_CHECK(address != NULL && bytes > 0 && guard_out != NULL, "osn_mapping_guard_add: an address, a length and guard_out are required");
  pthread_mutex_lock(&guards_lock);
  if (!installed) {
    page_size = (uintptr_t) sysconf(_SC_PAGESIZE);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGBUS, &action, &previous_action) != 0) {
      pthread_mutex_unlock(&guards_lock);
      return osn_fail(OSN_STATUS_INTERNAL_ERROR, "osn_mapping_guard_add: sigaction(SIGBUS) failed");
    }
    installed = 1;
  }
  if (((uintptr_t) address & (page_size - 1)) != 0) {
    pthread_mutex_unlock(&guards_lock);
    return osn_fail(OSN_STATUS_INVALID_ARGUMENT, "osn_mapping_guard_add: %p is not page-aligned", address);
  }
  for (int32_t i = 0; i < OSN_MAPPING_GUARDS; i++) {
    if (atomic_load_explicit(&guards[i].start, memory_order_relaxed) != 0) continue;
    atomic_store_explicit(&guards[i].bytes, bytes, memory_order_relaxed);
    atomic_store_explicit(&guards[i].faults, 0, memory_order_relaxed);
    atomic_store_explicit(&guards[i].start, (uintptr_t) address, memory_order_release);
    if (i >= atomic_load_explicit(&guards_used, memory_order_relaxed)) atomic_store_explicit(&guards_used, i + 1, memory_order_release);
    pthread_mutex_unlock(&guards_lock);
    *guard_out = i;
    return osn_ok();
  }
  pthread_mutex_unlock(&guards_lock);
  return osn_fail(OSN_STATUS_OUT_OF_MEMORY, "osn_mapping_guard_add: %d mappings are guarded already", OSN_MAPPING_GUARDS);
}

int32_t osn_mapping_guard_remove(int32_t guard) {
  GUARD_CHECK(guard);
  pthread_mutex_lock(&guards_lock);
  const uintptr_t start = atomic_exchange_explicit(&guards[guard].start, 0, memory_order_acq_rel);
  pthread_mutex_unlock(&guards_lock);
  return start != 0 ? osn_ok() : osn_fail(OSN_STATUS_INVALID_ARGUMENT, "osn_mapping_guard_remove: guard %d is not in use", (int) guard);
}

int32_t osn_mapping_guard_faults(int32_t guard, int64_t* faults_out) {
  GUARD_CHECK(guard);
  OSN_CHECK(faults_out != NULL, "osn_mapping_guard_faults: faults_out is NULL");
  OSN_CHECK(atomic_load_explicit(&guards[guard].start, memory_order_acquire) != 0, "osn_mapping_guard_faults: guard %d is not in use", (int) guard);
  *faults_out = atomic_load_explicit(&guards[guard].faults, memory_order_acquire);
  return osn_ok();
}

#endif
