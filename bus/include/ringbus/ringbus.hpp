// The whole public API of the ringbus client library.
#pragma once

#include "ringbus/bytes.hpp"
#include "ringbus/connector_counters.hpp"
#include "ringbus/group.hpp"
#include "ringbus/inspector.hpp"
#include "ringbus/mirror.hpp"
#include "ringbus/pin.hpp"
#include "ringbus/producer.hpp"
#include "ringbus/result.hpp"
#include "ringbus/subscriber.hpp"
#include "ringbus/topic.hpp"
#include "ringbus/wait.hpp"
