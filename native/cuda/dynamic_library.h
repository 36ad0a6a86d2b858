// Run-time loading of NVIDIA's optional libraries (cuBLAS, NCCL): the addon builds without
// their headers or libraries, and a call that needs one that is absent fails with a message
// naming the library, every place searched and why each failed, never a crash at load time.
//
// Search order: the environment variable (a file, or a directory holding one of the
// sonames) when it is set, and only there: a path the user chose that does not load must
// not be silently replaced by another copy of the library; otherwise the sonames in order,
// through the dynamic loader's own search (LD_LIBRARY_PATH, the ld.so cache, RUNPATH).
// Plain C++ (no CUDA types), shared by both compilations of native/cuda/.
#pragma once
#include <dlfcn.h>
#include <sys/stat.h>

#include <initializer_list>
#include <mutex>
#include <string>
#include <utility>

#include "growlm/cuda.h"

namespace growlm::cuda_libraries {

/// What to load and where to look.
struct LibrarySearch {
  /// The library as users know it ("cuBLAS").
  const char* name;
  /// The variable that overrides the search ("GROWLM_CUBLAS_PATH").
  const char* env;
  /// Sonames, most wanted first ("libcublas.so.13").
  std::initializer_list<const char*> sonames;
  /// What to do about it, appended to the error ("install ...").
  const char* remedy;
};

/// A dlopen handle and the path it was loaded from.
struct LoadedLibrary {
  void* handle = nullptr;
  std::string path;
};

namespace detail {

inline bool is_directory(const std::string& path) {
  struct stat s;
  return stat(path.c_str(), &s) == 0 && S_ISDIR(s.st_mode);
}

inline std::string sonames_text(const LibrarySearch& search) {
  std::string text;
  size_t i = 0;
  for (const char* soname : search.sonames) {
    if (i > 0) text += i + 1 == search.sonames.size() ? " or " : ", ";
    text += soname;
    i++;
  }
  return text;
}

}  // namespace detail

/// Opens the library `search` describes; throws CudaError listing every attempt.
inline LoadedLibrary open_library(const LibrarySearch& search) {
  std::string tried;
  auto attempt = [&tried](const std::string& path) -> void* {
    // RTLD_LOCAL: the library's symbols stay out of the global namespace (another copy of
    // cuBLAS loaded by some other addon in the process must not bind to ours).
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* why = dlerror();
      tried += "\n  " + path + ": " + (why ? why : "not loadable");
    }
    return handle;
  };
  const char* override_path = std::getenv(search.env);
  if (override_path != nullptr && override_path[0] != '\0') {
    const std::string base(override_path);
    if (detail::is_directory(base)) {
      for (const char* soname : search.sonames) {
        const std::string path = base + (base.back() == '/' ? "" : "/") + soname;
        if (void* handle = attempt(path)) return {handle, path};
      }
    } else if (void* handle = attempt(base)) {
      return {handle, base};
    }
    throw CudaError(std::string(search.name) + " could not be loaded from " + search.env + "=" + base +
                    " (a library file, or a directory holding " + detail::sonames_text(search) + "); tried:" +
                    tried + "\nFix or unset " + search.env + ".");
  }
  for (const char* soname : search.sonames) {
    if (void* handle = attempt(soname)) return {handle, soname};
  }
  throw CudaError(std::string(search.name) + " (" + detail::sonames_text(search) +
                  ") is not installed where the dynamic loader looks (LD_LIBRARY_PATH, the ld.so cache); tried:" +
                  tried + "\n" + search.remedy + ", or set " + search.env +
                  " to the library file or its directory.");
}

/// The address of `symbol` in `library`; throws CudaError naming both when it is missing
/// (a library older than the API growlm calls).
template <typename Fn>
Fn symbol(const LoadedLibrary& library, const char* library_name, const char* symbol) {
  dlerror();
  void* address = dlsym(library.handle, symbol);
  if (address == nullptr) {
    throw CudaError(std::string(library_name) + " at " + library.path + " has no " + symbol +
                    ": it is older than growlm needs");
  }
  return reinterpret_cast<Fn>(address);
}

/// Loads a library's function table once per process, on first use; a failed load is
/// retried by the next call (the user may fix the environment and try again).
template <typename Api>
class LazyApi {
 public:
  template <typename Load>
  const Api& get(Load load) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!loaded_) {
      api_ = load();
      loaded_ = true;
    }
    return api_;
  }

 private:
  std::mutex mutex_;
  bool loaded_ = false;
  Api api_{};
};

}  // namespace growlm::cuda_libraries
