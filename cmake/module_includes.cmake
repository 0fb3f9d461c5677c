# Include boundaries (STYLE.md item 1): includes are rooted at the repository ("protocol/frame.h"), but
# no target sees the whole repository. Each library gets an include root under the build tree that
# holds links to the headers of its own folders only; a target sees its own root and the roots of the
# libraries it links. An include of a library the target does not link therefore fails to build.

# pgs_module_includes(<target> <folder or header>...): <target> and everything that links it see the
# headers (*.h, *.inc; not recursive) of these folders, or just the headers named, each given relative to
# the repository root.
function(pgs_module_includes target)
  set(root ${CMAKE_BINARY_DIR}/include_roots/${target})
  foreach(item IN LISTS ARGN)
    if(item MATCHES "\\.(h|inc)$")
      get_filename_component(folder ${item} DIRECTORY)
      set(headers ${CMAKE_SOURCE_DIR}/${item})
    else()
      set(folder ${item})
      file(GLOB headers CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/${folder}/*.h ${CMAKE_SOURCE_DIR}/${folder}/*.inc)
    endif()
    file(MAKE_DIRECTORY ${root}/${folder})
    foreach(header IN LISTS headers)
      get_filename_component(name ${header} NAME)
      file(CREATE_LINK ${header} ${root}/${folder}/${name} SYMBOLIC)
    endforeach()
  endforeach()
  target_include_directories(${target} PUBLIC ${root})
endfunction()

# pgs_tree_includes(<name> <folder>): an include root that shows the whole of <folder> (tests, which may
# include any test support file), for include_directories() of that part of the tree.
function(pgs_tree_includes out folder)
  set(root ${CMAKE_BINARY_DIR}/include_roots/${folder}-tree)
  file(MAKE_DIRECTORY ${root})
  file(CREATE_LINK ${CMAKE_SOURCE_DIR}/${folder} ${root}/${folder} SYMBOLIC)
  set(${out} ${root} PARENT_SCOPE)
endfunction()
