# Install rules: the ringbus library, its public headers, and an exported CMake package so that
# another project can `find_package(ringbus)` and link `ringbus::ringbus`.
option(RINGBUS_INSTALL "Generate the install rules and the CMake package" ${RINGBUS_TOP_LEVEL})
if(NOT RINGBUS_INSTALL)
  return()
endif()

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(RINGBUS_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/ringbus"
    CACHE STRING "Where ringbusConfig.cmake is installed, relative to the prefix")

# A static ringbus exports its private dependencies as $<LINK_ONLY:Boost::headers> and
# $<LINK_ONLY:PkgConfig::HWLOC> (consumers link them); ringbusConfig.cmake re-creates both.
# The BUILD_INTERFACE ones (ringbus_layout, ringbus_warnings) drop out of the export.
install(TARGETS ringbus
  EXPORT ringbusTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# Only the public API: bus/include/ringbus/*.hpp -> include/ringbus/ (the target's
# $<INSTALL_INTERFACE:include> points consumers there).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/bus/include/ringbus/
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/ringbus
  FILES_MATCHING PATTERN "*.hpp")

install(EXPORT ringbusTargets
  NAMESPACE ringbus::
  FILE ringbusTargets.cmake
  DESTINATION ${RINGBUS_INSTALL_CMAKEDIR})

configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/ringbusConfig.cmake.in
  ${PROJECT_BINARY_DIR}/ringbusConfig.cmake
  INSTALL_DESTINATION ${RINGBUS_INSTALL_CMAKEDIR}
  NO_SET_AND_CHECK_MACRO)

# 0.x releases promise nothing across minor versions in principle; SameMajorVersion is what
# the package promises from 1.0 on.
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/ringbusConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion)

install(FILES
  ${PROJECT_BINARY_DIR}/ringbusConfig.cmake
  ${PROJECT_BINARY_DIR}/ringbusConfigVersion.cmake
  DESTINATION ${RINGBUS_INSTALL_CMAKEDIR})
