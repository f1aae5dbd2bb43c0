/* Large blocks mapped straight from the system, with a small cache of freed ones (see osn_block_allocate).
   glibc keeps freed blocks below its (growing) mmap threshold in its heaps, where a streaming run's weights and
   activations of many sizes leave hundreds of MB resident; mapping them costs a page fault per page instead, which
   the cache avoids for the common case of an operation freeing a block of the size the next one asks for. */
#include <stdatomic.h>
#include <string.h>

#include "osn_internal.h"

#if defined(_WIN32)
#  include <windows.h>
static void* map_pages(size_t bytes) { return VirtualAlloc(NULL, bytes, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE); }
static void unmap_pages(void* block, size_t bytes) { (void) bytes; VirtualFree(block, 0, MEM_RELEASE); }
#else
#  include <sys/mman.h>
#  define OSN_HUGE_PAGE ((size_t) 2 << 20)
static void* map_pages(size_t bytes) {
  if (bytes < OSN_HUGE_PAGE) {
    void* block = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return block == MAP_FAILED ? NULL : block;
  }
  /* 2 MiB-aligned, with transparent huge pages where the system allows them (madvise mode): a page fault then
     maps 2 MiB at once instead of 4 KiB, which matters for the GBs a streaming run maps and unmaps. */
  char* mapped = mmap(NULL, bytes + OSN_HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapped == MAP_FAILED) return NULL;
  char* block = (char*) (((uintptr_t) mapped + OSN_HUGE_PAGE - 1) & ~(uintptr_t) (OSN_HUGE_PAGE - 1));
  if (block > mapped) munmap(mapped, (size_t) (block - mapped));
  const size_t tail = (size_t) (mapped + bytes + OSN_HUGE_PAGE - (block + bytes));
  if (tail > 0) munmap(block + bytes, tail);
#  if defined(MADV_HUGEPAGE)
  madvise(block, bytes, MADV_HUGEPAGE);
#  endif
  return block;
}
static void unmap_pages(void* block, size_t bytes) { munmap(block, bytes); }
#endif

#define OSN_PAGE 4096
#define OSN_CACHE_SLOTS 32

typedef struct cached_block {
  void* block;
  size_t bytes;  /* page-rounded */
} cached_block;

/* Most recently freed last. */
static cached_block cache[OSN_CACHE_SLOTS];
static size_t cache_count;
static size_t cache_bytes;
static size_t cache_limit = OSN_DEFAULT_BLOCK_CACHE_BYTES;
static atomic_flag cache_lock = ATOMIC_FLAG_INIT;

static void lock(void) {
  while (atomic_flag_test_and_set_explicit(&cache_lock, memory_order_acquire)) {
  }
}

static void unlock(void) { atomic_flag_clear_explicit(&cache_lock, memory_order_release); }

static size_t round_to_pages(size_t bytes) { return (bytes + OSN_PAGE - 1) & ~(size_t) (OSN_PAGE - 1); }

/* Removes cache[i] (the caller holds the lock). */
static cached_block take(size_t i) {
  cached_block taken = cache[i];
  memmove(&cache[i], &cache[i + 1], (cache_count - i - 1) * sizeof(cached_block));
  cache_count--;
  cache_bytes -= taken.bytes;
  return taken;
}

void* osn_take_block(size_t bytes, int32_t* zeroed) {
  const size_t rounded = round_to_pages(bytes);
  void* found = NULL;
  lock();
  for (size_t i = cache_count; i-- > 0;)
    if (cache[i].bytes == rounded) {
      found = take(i).block;
      break;
    }
  unlock();
  *zeroed = found == NULL;
  return found != NULL ? found : map_pages(rounded);
}

void osn_give_block(void* block, size_t bytes) {
  if (block == NULL) return;
  const size_t rounded = round_to_pages(bytes);
  cached_block evicted[OSN_CACHE_SLOTS + 1];
  size_t evicted_count = 0;
  lock();
  if (rounded <= cache_limit) {
    /* Oldest first out, until the block fits the limit and a slot. */
    while (cache_count > 0 && (cache_bytes + rounded > cache_limit || cache_count == OSN_CACHE_SLOTS))
      evicted[evicted_count++] = take(0);
    cache[cache_count++] = (cached_block) { block, rounded };
    cache_bytes += rounded;
  } else {
    evicted[evicted_count++] = (cached_block) { block, rounded };
  }
  unlock();
  for (size_t i = 0; i < evicted_count; i++) unmap_pages(evicted[i].block, evicted[i].bytes);
}

int32_t osn_block_allocate(size_t bytes, void** block_out, int32_t* zeroed_out) {
  OSN_CHECK(block_out != NULL && zeroed_out != NULL, "osn_block_allocate: null output pointer");
  *block_out = NULL;
  OSN_CHECK(bytes > 0, "osn_block_allocate: zero bytes");
  *block_out = osn_take_block(bytes, zeroed_out);
  if (*block_out == NULL) return osn_fail(OSN_STATUS_OUT_OF_MEMORY, "osn_block_allocate: could not map %zu bytes", bytes);
  return osn_ok();
}

int32_t osn_block_free(void* block, size_t bytes) {
  osn_give_block(block, bytes);
  return osn_ok();
}

int32_t osn_block_cache_set_limit(size_t bytes) {
  cached_block evicted[OSN_CACHE_SLOTS];
  size_t evicted_count = 0;
  lock();
  cache_limit = bytes;
  while (cache_count > 0 && cache_bytes > cache_limit) evicted[evicted_count++] = take(0);
  unlock();
  for (size_t i = 0; i < evicted_count; i++) unmap_pages(evicted[i].block, evicted[i].bytes);
  return osn_ok();
}
