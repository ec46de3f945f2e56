// PageArray: a fixed-size array of trivially copyable elements for the big tables (the
// user table's slab chunks and index). Its pages are mapped when it is made, in one call,
// instead of one page fault per page on first touch. No I/O here.
#pragma once

#include <cstddef>
#include <type_traits>

namespace director::core {

// Raw storage behind PageArray: `bytes` zero-filled bytes; when large, an anonymous
// mapping, populated at once when `populate` (for memory about to be written whole),
// else faulted in page by page as it is first touched; when small, from the heap (a
// page-sized mapping per tiny table would waste memory). From huge_page_bytes up the
// mapping starts on a huge page boundary and asks for transparent huge pages
// (MADV_HUGEPAGE, which the default "madvise" setting of the kernel honours): one fault
// and one TLB entry per 2 MiB instead of 512. On a virtual machine a fault costs tens
// of microseconds, and the index is probed at random on every lookup. Throws
// std::bad_alloc when no memory is left.
class PageMemory {
public:
	PageMemory() = default;
	PageMemory(size_t bytes, bool populate);
	~PageMemory() { release(); }
	PageMemory(PageMemory &&other) noexcept : data_(other.data_), bytes_(other.bytes_), mapped_(other.mapped_)
	{
		other.data_ = nullptr;
		other.bytes_ = 0;
		other.mapped_ = false;
	}
	PageMemory &operator=(PageMemory &&other) noexcept
	{
		if (this != &other) {
			release();
			data_ = other.data_;
			bytes_ = other.bytes_;
			mapped_ = other.mapped_;
			other.data_ = nullptr;
			other.bytes_ = 0;
			other.mapped_ = false;
		}
		return *this;
	}
	PageMemory(const PageMemory &) = delete;
	PageMemory &operator=(const PageMemory &) = delete;

	void *data() const { return data_; }
	size_t bytes() const { return bytes_; }

	// Below this size the memory comes from the heap.
	static constexpr size_t map_min_bytes = 256 * 1024;
	// From this size on, huge pages.
	static constexpr size_t huge_page_bytes = 2 * 1024 * 1024;

private:
	void release() noexcept;
	void *data_ = nullptr;
	size_t bytes_ = 0;
	bool mapped_ = false;
};

// `n` elements of T, zero-filled, populated unless told otherwise. Why: on a virtual machine with costly page faults
// (tens of microseconds each on the CI box), touching a freshly allocated 20 MB slab
// page by page took longer than everything else in a state file load together.
template <typename T> class PageArray {
	static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>,
		      "PageArray holds plain data only");

public:
	PageArray() = default;
	explicit PageArray(size_t n, bool populate = true) : mem_(n * sizeof(T), populate), size_(n)
	{
	}

	T *get() const { return static_cast<T *>(mem_.data()); }
	T &operator[](size_t i) const { return get()[i]; }
	size_t size() const { return size_; }
	explicit operator bool() const { return size_ != 0; }
	void reset() { *this = PageArray(); }

private:
	PageMemory mem_;
	size_t size_ = 0;
};

} // namespace director::core
