# Packaging: install() rules and the CMake package config, so an outside project can do
#
#   find_package(fgc REQUIRED)
#   fgc_add_model(my_model model.pbtxt NAMESPACE my CLASS Model)
#   target_link_libraries(app PRIVATE my_model)
#
# Installed layout (under CMAKE_INSTALL_PREFIX):
#   bin/fgc                              the compiler          -> imported target fgc::fgc
#   lib/libfgc_runtime.a                 the runtime           -> imported target fgc::runtime
#   include/fgc/runtime/*.h              the runtime's public headers
#   lib/cmake/fgc/fgcConfig.cmake        (+ ConfigVersion, Targets, FgcAddModel.cmake)
# fgc::runtime carries its OpenMP link dependency, which the config resolves with
# find_dependency(OpenMP). Included once from the top-level CMakeLists.txt after the targets exist;
# the runtime's own install() lines (library + headers, export set fgcRuntimeTargets) live in
# runtime/CMakeLists.txt.
include(CMakePackageConfigHelpers)

set(FGC_INSTALL_CMAKEDIR lib/cmake/fgc)

# Exported names: fgc::fgc and fgc::runtime (the same names the build tree uses).
set_target_properties(fgc PROPERTIES EXPORT_NAME fgc)
set_target_properties(fgc_runtime PROPERTIES EXPORT_NAME runtime)

install(TARGETS fgc EXPORT fgcRuntimeTargets RUNTIME DESTINATION bin)
install(EXPORT fgcRuntimeTargets
  NAMESPACE fgc::
  FILE fgcTargets.cmake
  DESTINATION ${FGC_INSTALL_CMAKEDIR})

# The config template is kept here rather than in a separate .in file.
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/fgcConfig.cmake.in [=[
# fgc package config: imported targets fgc::fgc (the compiler) and fgc::runtime (the static
# runtime library generated code links against), and the function fgc_add_model().
@PACKAGE_INIT@

include(CMakeFindDependencyMacro)
find_dependency(OpenMP COMPONENTS CXX)

include("${CMAKE_CURRENT_LIST_DIR}/fgcTargets.cmake")
include("${CMAKE_CURRENT_LIST_DIR}/FgcAddModel.cmake")

check_required_components(fgc)
]=])
configure_package_config_file(
  ${CMAKE_CURRENT_BINARY_DIR}/fgcConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/fgcConfig.cmake
  INSTALL_DESTINATION ${FGC_INSTALL_CMAKEDIR})
# Before 1.0 a minor version may break compatibility, so 0.1 accepts only 0.1.x requests.
write_basic_package_version_file(
  ${CMAKE_CURRENT_BINARY_DIR}/fgcConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/fgcConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/fgcConfigVersion.cmake
  ${CMAKE_CURRENT_LIST_DIR}/FgcAddModel.cmake
  DESTINATION ${FGC_INSTALL_CMAKEDIR})
