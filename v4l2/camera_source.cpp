/* SPDX-License-Identifier: MIT */
/**
 * \file camera_source.cpp
 * \brief Defaults of the CameraSource interface
 */
#include "v4l2/camera_source.h"

#include <cerrno>

#include <sys/epoll.h>

namespace xmb {

/** \brief "userptr", "dmabuf-import" or "mmap-export", for logs */
const char *toString(MemoryType t)
{
	switch (t) {
	case MemoryType::UserPtr:
		return "userptr";
	case MemoryType::DmaBufImport:
		return "dmabuf-import";
	case MemoryType::MmapExport:
		return "mmap-export";
	}
	return "?";
}

/**
 * \brief EPOLLIN (frames) and EPOLLPRI (V4L2 events) by default
 */
uint32_t CameraSource::pollEvents() const
{
	return EPOLLIN | EPOLLPRI;
}

/**
 * \brief Sources without events have none pending
 */
int CameraSource::dequeueEvent(SourceEvent &)
{
	return -EAGAIN;
}

} /* namespace xmb */
