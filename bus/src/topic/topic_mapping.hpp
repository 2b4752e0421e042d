// A mapped, validated topic file: typed access to its header, reader slots and ring.
#pragma once

#include <memory>
#include <string>

#include <boost/interprocess/file_mapping.hpp>
#include <boost/interprocess/mapped_region.hpp>

#include "layout/frame_layout.hpp"
#include "layout/reader_slot_layout.hpp"
#include "layout/topic_layout.hpp"
#include "ringbus/result.hpp"
#include "ringbus/ring_view.hpp"
#include "ringbus/topic.hpp"

namespace ringbus::detail {

class TopicMapping {
 public:
  // Maps the file at `path` and validates every header field against the file size. Errors:
  // not_found, not_ready, corrupt, incompatible, io_error; each message names the problem.
  static Result<std::shared_ptr<TopicMapping>> open(const std::string& path, std::string name,
                                                    const OpenOptions& options);

  // Checks a header already copied out of shared memory against the file size; returns the
  // decoded configuration or an error naming the first bad field.
  static Result<TopicConfig> validate(const layout::TopicHeader& header, std::uint64_t file_size,
                                      const std::string& path);

  layout::TopicHeader& header() const noexcept { return *header_; }
  layout::ReaderSlot& slot(std::uint32_t i) const noexcept { return slots_[i]; }
  std::byte* ring() const noexcept { return view_.base; }
  // The ring's address and shape, for the handles that walk it.
  const RingView& ring_view() const noexcept { return view_; }
  const TopicConfig& config() const noexcept { return config_; }
  const std::string& name() const noexcept { return name_; }
  const std::string& path() const noexcept { return path_; }
  std::uint32_t lap_shift() const noexcept { return view_.lap_shift; }
  bool read_only() const noexcept { return read_only_; }

 private:
  TopicMapping() = default;

  boost::interprocess::file_mapping file_;
  boost::interprocess::mapped_region region_;
  layout::TopicHeader* header_ = nullptr;
  layout::ReaderSlot* slots_ = nullptr;
  RingView view_;
  TopicConfig config_;
  std::string name_;
  std::string path_;
  bool read_only_ = false;
};

// A topic's mapping, for the library's own code (and its tests): not part of the API.
struct TopicAccess {
  static TopicMapping& mapping(const Topic& topic) noexcept { return *topic.map_; }
};
inline TopicMapping& mapping_of(const Topic& topic) noexcept { return TopicAccess::mapping(topic); }

}  // namespace ringbus::detail
