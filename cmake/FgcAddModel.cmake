# fgc_add_model(TARGET MODEL_FILE
#               [NAMESPACE ns] [CLASS name] [WEIGHTS inline|blob|file] [OUTPUT_NAME stem]
#               [COMPILE_OPTIONS option...] [PLUGINS target-or-path...])
#
# Compiles MODEL_FILE with `fgc compile` at build time and adds a static library TARGET holding
# the generated model class, linked to the fgc runtime. Include "<stem>.h" (stem defaults to
# TARGET) to use it. With WEIGHTS file, the weights file is <build dir>/<stem>.fgcw; its path is
# in the variable <TARGET>_WEIGHTS_FILE and in the target property FGC_WEIGHTS_FILE. COMPILE_OPTIONS are
# passed to `fgc compile` as they are (e.g. -O0, --outputs a,b). PLUGINS are custom-layer
# libraries loaded with `fgc --plugin` (a target of this project or a path).
#
# Inside the fgc build the compiler is the `fgc` target; an outside project gets it from
# find_package(fgc), which defines the imported target fgc::fgc.
function(fgc_add_model target model)
  cmake_parse_arguments(M "" "NAMESPACE;CLASS;WEIGHTS;OUTPUT_NAME" "COMPILE_OPTIONS;PLUGINS" ${ARGN})
  if(NOT M_OUTPUT_NAME)
    set(M_OUTPUT_NAME ${target})
  endif()
  if(NOT M_WEIGHTS)
    set(M_WEIGHTS inline)
  endif()
  # The installed package's fgc::fgc first, so an outside project's own target named `fgc`
  # is never mistaken for the compiler.
  if(TARGET fgc::fgc)
    set(compiler $<TARGET_FILE:fgc::fgc>)
    set(compilerDep fgc::fgc)
  elseif(TARGET fgc)
    set(compiler $<TARGET_FILE:fgc>)
    set(compilerDep fgc)
  else()
    message(FATAL_ERROR "fgc_add_model: no fgc compiler target (use find_package(fgc))")
  endif()
  get_filename_component(model "${model}" ABSOLUTE)
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/${target}.fgc)
  set(stem ${dir}/${M_OUTPUT_NAME})
  set(args compile ${model} -o ${stem}.cpp --weights ${M_WEIGHTS})
  if(M_NAMESPACE)
    list(APPEND args --namespace ${M_NAMESPACE})
  endif()
  if(M_CLASS)
    list(APPEND args --class ${M_CLASS})
  endif()
  list(APPEND args ${M_COMPILE_OPTIONS})
  set(pluginDeps "")
  foreach(plugin ${M_PLUGINS})
    if(TARGET ${plugin})
      list(APPEND args --plugin $<TARGET_FILE:${plugin}>)
      list(APPEND pluginDeps ${plugin})
    else()
      get_filename_component(plugin "${plugin}" ABSOLUTE)
      list(APPEND args --plugin ${plugin})
      list(APPEND pluginDeps ${plugin})
    endif()
  endforeach()
  set(outputs ${stem}.cpp ${stem}.h)
  set(sources ${stem}.cpp)
  if(M_WEIGHTS STREQUAL "blob")
    list(APPEND outputs ${stem}.weights.S ${stem}.weights.bin)
    list(APPEND sources ${stem}.weights.S)
    set_source_files_properties(${stem}.weights.S PROPERTIES
      LANGUAGE ASM COMPILE_OPTIONS "-Wa,-I${dir}" OBJECT_DEPENDS ${stem}.weights.bin)
  elseif(M_WEIGHTS STREQUAL "file")
    list(APPEND outputs ${stem}.fgcw)
    set(${target}_WEIGHTS_FILE ${stem}.fgcw PARENT_SCOPE)
  endif()
  add_custom_command(
    OUTPUT ${outputs}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${dir}
    COMMAND ${compiler} ${args} > /dev/null
    DEPENDS ${model} ${compilerDep} ${pluginDeps}
    COMMENT "fgc compile ${model}"
    VERBATIM)
  add_library(${target} STATIC ${sources})
  target_include_directories(${target} PUBLIC ${dir})
  # fgc::runtime: the imported target of the installed package, an alias inside the fgc build.
  target_link_libraries(${target} PUBLIC fgc::runtime)
  set_target_properties(${target} PROPERTIES FGC_WEIGHTS_FILE "${stem}.fgcw")
endfunction()
