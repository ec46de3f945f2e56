// PageMemory: anonymous mappings populated at once for large arrays. No I/O here.
#include "page-array.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <new>

namespace director::core {

PageMemory::PageMemory(size_t bytes, bool populate) : bytes_(bytes)
{
	if (bytes == 0)
		return;
	if (bytes >= huge_page_bytes) {
		// Over-map by one huge page and trim, so the mapping starts on a huge page
		// boundary; ask for huge pages before anything is faulted in.
		size_t span = bytes + huge_page_bytes;
		void *p = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);
		if (p != MAP_FAILED) {
			auto start = reinterpret_cast<uintptr_t>(p);
			uintptr_t aligned = (start + huge_page_bytes - 1) & ~uintptr_t(huge_page_bytes - 1);
			if (aligned > start)
				munmap(p, aligned - start);
			size_t tail = start + span - (aligned + bytes);
			if (tail > 0)
				munmap(reinterpret_cast<void *>(aligned + bytes), tail);
			data_ = reinterpret_cast<void *>(aligned);
			mapped_ = true;
#ifdef MADV_HUGEPAGE
			madvise(data_, bytes, MADV_HUGEPAGE);
#endif
#ifdef MADV_POPULATE_WRITE
			// Older kernels refuse it: the pages then come in on first touch.
			if (populate)
				madvise(data_, bytes, MADV_POPULATE_WRITE);
#endif
			return;
		}
	} else if (bytes >= map_min_bytes) {
		void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0), -1, 0);
		if (p != MAP_FAILED) {
			data_ = p;
			mapped_ = true;
			return;
		}
		// Fall back to the heap (a mapping limit, say); it fails the same way
		// when memory is really gone.
	}
	data_ = std::calloc(1, bytes);
	if (data_ == nullptr) {
		bytes_ = 0;
		throw std::bad_alloc();
	}
}

void PageMemory::release() noexcept
{
	if (data_ == nullptr)
		return;
	if (mapped_)
		munmap(data_, bytes_);
	else
		std::free(data_);
	data_ = nullptr;
	bytes_ = 0;
	mapped_ = false;
}

} // namespace director::core
