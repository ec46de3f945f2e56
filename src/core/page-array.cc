// PageMemory: anonymous mappings populated at once for large arrays. No I/O here.
#include "page-array.h"

#include <sys/mman.h>

#include <cstdlib>
#include <new>

namespace director::core {

PageMemory::PageMemory(size_t bytes, bool populate) : bytes_(bytes)
{
	if (bytes == 0)
		return;
	if (bytes >= map_min_bytes) {
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
