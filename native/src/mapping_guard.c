/* Memory-mapped weight files that are truncated while mapped. Reading a page of a file mapping past the file's (new) end
   raises SIGBUS, which kills the process. osn_mapping_guard_add registers a mapping's address range; a SIGBUS inside a
   registered range maps zero pages over the rest of the range, counts the fault and lets the read go on (reading zeros),
   so that the caller can fail the work cleanly once osn_mapping_guard_faults says the range faulted. A SIGBUS anywhere
   else goes to the handler that was installed before (the .NET runtime's, or the default action). */
#include <stdatomic.h>

#include "osn_internal.h"

#define OSN_GUARD_SLOTS 256

#if defined(_WIN32)

/* Windows refuses to truncate a mapped file: there is nothing to guard. */
int32_t osn_mapping_guard_add(const void* address, size_t bytes) {
  OSN_CHECK(address != NULL && bytes > 0, "osn_mapping_guard_add: an address and a length are required");
  return osn_ok();
}
int32_t osn_mapping_guard_remove(const void* address) { return osn_ok(); }
int32_t osn_mapping_guard_faults(const void* address, int64_t* faults_out) {
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

typedef struct guard {
  _Atomic(uintptr_t) start; /* 0: a free slot */
  _Atomic(size_t) bytes;
  _Atomic(int64_t) faults;
} guard;

static guard guards[OSN_GUARD_SLOTS];
static pthread_mutex_t guards_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction previous_action;
static int installed;
static uintptr_t page_size;

static void on_sigbus(int signal_number, siginfo_t* info, void* context) {
  const uintptr_t address = (uintptr_t) info->si_addr;
  for (size_t i = 0; i < OSN_GUARD_SLOTS; i++) {
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

int32_t osn_mapping_guard_add(const void* address, size_t bytes) {
  OSN_CHECK(address != NULL && bytes > 0, "osn_mapping_guard_add: an address and a length are required");
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
  for (size_t i = 0; i < OSN_GUARD_SLOTS; i++) {
    if (atomic_load_explicit(&guards[i].start, memory_order_relaxed) != 0) continue;
    atomic_store_explicit(&guards[i].bytes, bytes, memory_order_relaxed);
    atomic_store_explicit(&guards[i].faults, 0, memory_order_relaxed);
    atomic_store_explicit(&guards[i].start, (uintptr_t) address, memory_order_release);
    pthread_mutex_unlock(&guards_lock);
    return osn_ok();
  }
  pthread_mutex_unlock(&guards_lock);
  return osn_fail(OSN_STATUS_OUT_OF_MEMORY, "osn_mapping_guard_add: %d mappings are guarded already", OSN_GUARD_SLOTS);
}

static guard* find(const void* address) {
  for (size_t i = 0; i < OSN_GUARD_SLOTS; i++)
    if (atomic_load_explicit(&guards[i].start, memory_order_acquire) == (uintptr_t) address) return &guards[i];
  return NULL;
}

int32_t osn_mapping_guard_remove(const void* address) {
  OSN_CHECK(address != NULL, "osn_mapping_guard_remove: address is NULL");
  pthread_mutex_lock(&guards_lock);
  guard* slot = find(address);
  if (slot != NULL) atomic_store_explicit(&slot->start, 0, memory_order_release);
  pthread_mutex_unlock(&guards_lock);
  return slot != NULL ? osn_ok() : osn_fail(OSN_STATUS_INVALID_ARGUMENT, "osn_mapping_guard_remove: %p is not guarded", address);
}

int32_t osn_mapping_guard_faults(const void* address, int64_t* faults_out) {
  OSN_CHECK(address != NULL && faults_out != NULL, "osn_mapping_guard_faults: address and faults_out are required");
  const guard* slot = find(address);
  OSN_CHECK(slot != NULL, "osn_mapping_guard_faults: %p is not guarded", address);
  *faults_out = atomic_load_explicit(&slot->faults, memory_order_acquire);
  return osn_ok();
}

#endif
