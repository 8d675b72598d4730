/*
 * xmb-dmabuf-probe: does gntdev's dma-buf support work on this kernel?
 * Run in a PV Dom0 (tests/vm: `xen-vm selftest --media`, suite xen-media).
 *
 *   xmb-dmabuf-probe [PAGES]      (default 4)
 *
 * For each dma-buf source, a PAGES-page buffer from /dev/dma_heap/system
 * (DMA_HEAP_IOCTL_ALLOC) and one from /dev/udmabuf (a memfd, UDMABUF_CREATE):
 *  1. write a pattern through the dma-buf's mmap;
 *  2. xengnttab_dmabuf_imp_to_refs(domid 0): gntdev imports the dma-buf and
 *     grants its pages to Dom0 itself;
 *  3. map those refs with xengnttab_map_grant_refs from domid 0 (the PV Dom0
 *     self-loop), check the pattern there, write a second one through the
 *     mapping and check it in the dma-buf's mmap;
 *  4. xengnttab_dmabuf_exp_from_refs(domid 0) on the same refs: x86 PV
 *     refuses it (gntdev: EINVAL when it uses PTE modification); reported,
 *     not a failure;
 *  5. unmap, xengnttab_dmabuf_imp_release, close.
 * One line per step on stdout. Exit status: 0 when steps 1-3 and 5 work for
 * both sources, 1 when one fails, 77 when the kernel lacks gntdev dma-buf
 * (ENOTTY: Debian's stock kernel) or the dma-buf devices.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create */
#endif
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/udmabuf.h>
#include <xengnttab.h>

#define MAX_PAGES 256

static int unsupported; /* ENOTTY from gntdev, or a missing device */

static void say(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const char *what, const char *fmt, ...)
{
	va_list ap;
	printf("dmabuf-probe: %s: ", what);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static uint32_t pattern(uint32_t seed, size_t i)
{
	return (uint32_t)(i * 2654435761u) ^ seed;
}

static void fill(volatile uint32_t *p, size_t words, uint32_t seed)
{
	for (size_t i = 0; i < words; i++)
		p[i] = pattern(seed, i);
}

/* Index of the first word that differs, or -1. */
static long check(const volatile uint32_t *p, size_t words, uint32_t seed)
{
	for (size_t i = 0; i < words; i++)
		if (p[i] != pattern(seed, i))
			return (long)i;
	return -1;
}

/* CPU access brackets of a dma-buf (cache maintenance where it matters). */
static void cpu_access(int fd, uint64_t flags)
{
	struct dma_buf_sync sync = { .flags = flags };
	if (ioctl(fd, DMA_BUF_IOCTL_SYNC, &sync) != 0)
		fprintf(stderr, "dmabuf-probe: DMA_BUF_IOCTL_SYNC: %s\n", strerror(errno));
}

static int alloc_heap(size_t len, const char *what)
{
	int heap = open("/dev/dma_heap/system", O_RDWR | O_CLOEXEC);
	if (heap < 0) {
		say(what, "cannot open /dev/dma_heap/system: %s", strerror(errno));
		unsupported = 1;
		return -1;
	}
	struct dma_heap_allocation_data data = {
		.len = len,
		.fd_flags = O_RDWR | O_CLOEXEC,
	};
	int rc = ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &data);
	int err = errno;
	close(heap);
	if (rc != 0) {
		say(what, "DMA_HEAP_IOCTL_ALLOC of %zu bytes failed: %s", len, strerror(err));
		return -1;
	}
	return (int)data.fd;
}

static int alloc_udmabuf(size_t len, const char *what)
{
	int dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		say(what, "cannot open /dev/udmabuf: %s", strerror(errno));
		unsupported = 1;
		return -1;
	}
	int memfd = memfd_create("xmb-dmabuf-probe", MFD_ALLOW_SEALING | MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, (off_t)len) != 0 ||
	    fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK) != 0) {
		say(what, "memfd for udmabuf: %s", strerror(errno));
		if (memfd >= 0)
			close(memfd);
		close(dev);
		return -1;
	}
	struct udmabuf_create create = {
		.memfd = (uint32_t)memfd,
		.flags = UDMABUF_FLAGS_CLOEXEC,
		.offset = 0,
		.size = len,
	};
	int fd = ioctl(dev, UDMABUF_CREATE, &create);
	int err = errno;
	close(memfd); /* the dma-buf keeps the pages */
	close(dev);
	if (fd < 0) {
		say(what, "UDMABUF_CREATE of %zu bytes failed: %s", len, strerror(err));
		return -1;
	}
	return fd;
}

/* Steps 1-5 on one dma-buf; 0 when 1-3 and 5 work. */
static int roundtrip(xengnttab_handle *xgt, const char *what, int fd, uint32_t count, size_t page)
{
	const size_t len = count * page, words = len / sizeof(uint32_t);
	uint32_t refs[MAX_PAGES], domids[MAX_PAGES];
	int ok = 0;

	void *cpu = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (cpu == MAP_FAILED) {
		say(what, "mmap of the dma-buf failed: %s", strerror(errno));
		close(fd);
		return 1;
	}
	cpu_access(fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
	fill(cpu, words, 0x5eed0001u);
	cpu_access(fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);
	say(what, "%u pages (%zu bytes), pattern written through the dma-buf mmap", count, len);

	if (xengnttab_dmabuf_imp_to_refs(xgt, 0, (uint32_t)fd, count, refs) != 0) {
		int err = errno;
		say(what, "xengnttab_dmabuf_imp_to_refs(domid 0) FAILED: %s%s", strerror(err),
		    err == ENOTTY ? " (no CONFIG_XEN_GNTDEV_DMABUF in this kernel)" : "");
		if (err == ENOTTY)
			unsupported = 1;
		munmap(cpu, len);
		close(fd);
		return 1;
	}
	char list[MAX_PAGES * 11 + 1];
	size_t at = 0;
	for (uint32_t i = 0; i < count && at < sizeof(list) - 12; i++)
		at += (size_t)snprintf(list + at, sizeof(list) - at, "%s%u", i ? " " : "", refs[i]);
	say(what, "xengnttab_dmabuf_imp_to_refs(domid 0): OK, refs %s", list);

	for (uint32_t i = 0; i < count; i++)
		domids[i] = 0;
	volatile uint32_t *map = xengnttab_map_grant_refs(xgt, count, domids, refs, PROT_READ | PROT_WRITE);
	if (!map) {
		say(what, "xengnttab_map_grant_refs(domid 0) FAILED: %s", strerror(errno));
	} else {
		long bad = check(map, words, 0x5eed0001u);
		if (bad >= 0) {
			say(what, "mapped the refs back from domid 0: pattern MISMATCH at byte %ld (0x%08x)",
			    bad * 4, map[bad]);
		} else {
			fill(map, words, 0x5eed0002u);
			cpu_access(fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
			bad = check(cpu, words, 0x5eed0002u);
			cpu_access(fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
			if (bad >= 0)
				say(what, "write through the grant mapping NOT seen in the dma-buf at byte %ld",
				    bad * 4);
			else {
				say(what, "mapped the refs back from domid 0: pattern matches; "
				    "a write through the mapping is seen in the dma-buf (grants are writable)");
				ok = 1;
			}
		}
		if (xengnttab_unmap(xgt, (void *)map, count) != 0) {
			say(what, "xengnttab_unmap FAILED: %s", strerror(errno));
			ok = 0;
		}
	}

	/* The other direction: guest refs -> a Dom0 dma-buf. */
	uint32_t efd = 0;
	if (xengnttab_dmabuf_exp_from_refs(xgt, 0, 0, count, refs, &efd) == 0) {
		say(what, "xengnttab_dmabuf_exp_from_refs(domid 0): succeeded (fd %u; not expected on x86 PV)", efd);
		close((int)efd);
	} else {
		int err = errno;
		say(what, "xengnttab_dmabuf_exp_from_refs(domid 0): refused: %s (expected on x86: "
		    "a PV Dom0's gntdev cannot export grants as a dma-buf)", strerror(err));
	}

	if (xengnttab_dmabuf_imp_release(xgt, (uint32_t)fd) != 0) {
		say(what, "xengnttab_dmabuf_imp_release FAILED: %s", strerror(errno));
		ok = 0;
	} else {
		say(what, "released (imp_release, grants ended)");
	}
	munmap(cpu, len);
	close(fd);
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 0) : 4;
	if (n < 1 || n > MAX_PAGES) {
		fprintf(stderr, "usage: %s [PAGES (1-%d)]\n", argv[0], MAX_PAGES);
		return 2;
	}
	const uint32_t count = (uint32_t)n;
	const size_t page = (size_t)sysconf(_SC_PAGESIZE);

	xengnttab_handle *xgt = xengnttab_open(NULL, 0);
	if (!xgt) {
		printf("dmabuf-probe: xengnttab_open failed: %s (not in a Xen domain?)\n", strerror(errno));
		return 77;
	}

	int failed = 0, fd;
	fd = alloc_heap(count * page, "system heap");
	failed += fd < 0 ? 1 : roundtrip(xgt, "system heap", fd, count, page);
	fd = alloc_udmabuf(count * page, "udmabuf");
	failed += fd < 0 ? 1 : roundtrip(xgt, "udmabuf", fd, count, page);

	xengnttab_close(xgt);
	if (failed && unsupported) {
		printf("dmabuf-probe: UNSUPPORTED on this kernel (%d of 2 sources failed)\n", failed);
		return 77;
	}
	if (failed) {
		printf("dmabuf-probe: FAILED (%d of 2 sources)\n", failed);
		return 1;
	}
	printf("dmabuf-probe: OK (system heap and udmabuf: imp_to_refs + map from domid 0 both ways)\n");
	return 0;
}
