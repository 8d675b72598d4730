/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Test helpers: a page-aligned, page-sized buffer standing in for a granted
 * page, and raw access to the cameraif shared ring inside it (what a hostile
 * peer would scribble on).
 */

#include <cstdint>
#include <cstring>
#include <memory>

#include "protocol/cameraif.h"

namespace xmb::proto::test {

struct alignas(4096) SharedPage {
	uint8_t bytes[kXenPageSize];

	static std::unique_ptr<SharedPage> filled(uint8_t value)
	{
		auto p = std::make_unique<SharedPage>();
		std::memset(p->bytes, value, sizeof(p->bytes));
		return p;
	}

	void *data() { return bytes; }
	xen_cameraif_sring *sring() { return reinterpret_cast<xen_cameraif_sring *>(bytes); }
	xencamera_event_page *eventHeader() { return reinterpret_cast<xencamera_event_page *>(bytes); }
};

/** A request as an honest frontend builds it: all zero but id, op and body. */
inline xencamera_req makeRequest(uint16_t id, uint8_t op)
{
	xencamera_req r;
	std::memset(&r, 0, sizeof(r));
	r.id = id;
	r.operation = op;
	return r;
}

} /* namespace xmb::proto::test */
