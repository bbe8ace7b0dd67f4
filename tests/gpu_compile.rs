//! Every kernel compiles with NVRTC for the boards' GPUs, Xavier (sm_72) and Orin (sm_87): to
//! their machine code, and to the PTX the service builds at start (`compute_72`, `compute_87`).
//! NVRTC is a CPU library, so this needs no GPU: CI loads the `libnvrtc` of the pinned
//! `nvidia-cuda-nvrtc-cu12` wheel (.ci/run). Elsewhere, without the library, it says SKIPPED,
//! unless WIRETRACE_REQUIRE_NVRTC is set, as CI sets it.

use wiretrace::gpu::{compile, GpuError, KernelId, Source, SOURCES};

const BOARD_ARCHS: [&str; 4] = ["sm_72", "sm_87", "compute_72", "compute_87"];

/// Whether NVRTC can be loaded; fails where it must be.
fn nvrtc_or_skip() -> bool {
    let probe = Source { file: "probe.cu", text: "extern \"C\" __global__ void probe() {}" };
    match compile(probe, "sm_87") {
        Err(GpuError::NoNvrtc { .. }) if std::env::var_os("WIRETRACE_REQUIRE_NVRTC").is_some() => {
            panic!("WIRETRACE_REQUIRE_NVRTC is set but libnvrtc cannot be loaded (LD_LIBRARY_PATH?)")
        }
        Err(GpuError::NoNvrtc { .. }) => {
            eprintln!("SKIPPED: no libnvrtc to compile the kernels with");
            false
        }
        Err(e) => panic!("NVRTC cannot compile an empty kernel: {e}"),
        Ok(_) => true,
    }
}

#[test]
fn every_kernel_compiles_for_xavier_and_orin() {
    if !nvrtc_or_skip() {
        return;
    }
    for source in SOURCES {
        for arch in BOARD_ARCHS {
            let ptx = compile(source, arch).unwrap_or_else(|e| panic!("{e}"));
            for id in KernelId::ALL.iter().filter(|k| k.source() == source) {
                assert!(ptx.contains(&format!(".entry {}(", id.entry())), "{} lacks {}", source.file, id.entry());
            }
        }
    }
    for id in KernelId::ALL {
        assert!(SOURCES.contains(&id.source()), "{id:?}'s source is not compiled");
    }
}

#[test]
fn a_compile_error_names_the_file_and_the_line() {
    if !nvrtc_or_skip() {
        return;
    }
    let broken = Source {
        file: "broken.cu",
        text: "#include \"common.cuh\"\n\nextern \"C\" __global__ void k(float* out) {\n    out[0] = undeclared;\n}\n",
    };
    match compile(broken, "sm_87") {
        Err(GpuError::Compile { file, arch, log }) => {
            assert_eq!((file, arch.as_str()), ("broken.cu", "sm_87"));
            assert!(log.contains("broken.cu(4)") && log.contains("undeclared"), "{log}");
        }
        other => panic!("a broken kernel compiled: {other:?}"),
    }
}
