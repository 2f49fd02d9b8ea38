# cdbnet build. Switches (0/1): GPU CUDNN OPENCV MPI NCCL OPENMP OPENBLAS DEBUG DEBUG_SYNC SANITIZE PORTABLE
#   make                 CPU build for this machine (-march=native); OpenMP on,
#                        OpenBLAS when its header is found
#   make PORTABLE=1      runs on any x86-64-v2 CPU (kernels 4-wide, no FMA)
#   make MARCH=x86-64-v3 another target, e.g. the AVX2 kernels on an AVX-512 machine
#   make GPU=1 CUDNN=1   also compiles the CUDA seams and links cuBLAS/cuDNN
#   make cdbnet-mpi      ./cdbnet-mpi, with Open MPI (NCCL=1 with GPU=1: NCCL too)
#   make test            builds and runs the test suite (and ./cdbnet-mpi with Open MPI)
#   make fuzz            the fuzz harnesses, FUZZ_SECONDS each (clang)
GPU ?= 0
CUDNN ?= 0
OPENCV ?= 0
OPENMP ?= 1
DEBUG ?= 0
DEBUG_SYNC ?= 0
SANITIZE ?= 0
PORTABLE ?= 0
ifeq ($(PORTABLE),1)
MARCH ?= $(if $(filter x86_64,$(shell uname -m)),x86-64-v2,)
endif
MARCH ?= native
OPENBLAS ?= $(shell [ -f /usr/include/x86_64-linux-gnu/cblas.h ] || [ -f /usr/include/cblas.h ] || \
              [ -f /usr/include/openblas/cblas.h ] && echo 1 || echo 0)
STB ?= $(shell [ -f /usr/include/stb/stb_image.h ] && echo 1 || echo 0)
CUDA_PATH ?= /usr/local/cuda
ARCH ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90

CC ?= cc
NVCC ?= $(CUDA_PATH)/bin/nvcc
# The source folders, lowest level first (docs/architecture.md): a file
# includes headers of its own folder and of the folders before it.
SRC_DIRS = src/kernels src/core src/gpu src/layers src/model src/data src/train src/cli
INCLUDES = -Iinclude $(addprefix -I,$(SRC_DIRS))
CFLAGS = -std=gnu11 -Wall -Wextra -Wno-unknown-pragmas $(INCLUDES) -fPIC -MMD -MP
LDLIBS = -lm -lz
OPT = -O3 $(if $(MARCH),-march=$(MARCH)) -ffp-contract=off -fno-trapping-math

ifeq ($(DEBUG),1)
OPT = -O0 -g
endif
ifeq ($(SANITIZE),1)
OPT += -g -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif
CFLAGS += $(OPT)

MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
ifeq ($(OPENMP),1)
CFLAGS += -fopenmp
LDFLAGS += -fopenmp
else
CFLAGS += -fopenmp-simd
endif
ifeq ($(OPENBLAS),1)
CFLAGS += -DOPENBLAS
# Prefer Debian's OpenMP build of OpenBLAS, which shares cdbnet's OpenMP
# thread pool; fall back to whichever libopenblas the linker finds.
OPENBLAS_OMP_DIR := /usr/lib/$(MULTIARCH)/openblas-openmp
ifeq ($(OPENMP)$(wildcard $(OPENBLAS_OMP_DIR)/libopenblas.so.0),1$(OPENBLAS_OMP_DIR)/libopenblas.so.0)
LDLIBS += $(OPENBLAS_OMP_DIR)/libopenblas.so.0 -Wl,-rpath,$(OPENBLAS_OMP_DIR)
else
LDLIBS += -lopenblas
endif
endif
ifeq ($(STB),1)
CFLAGS += -DSTB_IMAGE
LDLIBS += -lstb
endif
# MPI=1: data-parallel training over Open MPI processes (libopenmpi-dev),
# mpirun -np N ./cdbnet train CFG.
MPI ?= 0
ifeq ($(MPI),1)
MPI_CFLAGS := $(shell mpicc --showme:compile 2>/dev/null)
MPI_LIBS := $(shell mpicc --showme:link 2>/dev/null)
ifeq ($(MPI_LIBS),)
$(error MPI=1 needs Open MPI: scripts/install_deps.sh (Debian libopenmpi-dev))
endif
CFLAGS += -DCDB_MPI $(MPI_CFLAGS)
LDLIBS += $(MPI_LIBS)
endif
# NCCL=1 (with GPU=1, and MPI=1 or the cdbnet-mpi target): GPU ranks sum
# their gradients with NCCL on the devices (the CUDA toolkit's nccl.h and
# libnccl) instead of through the host.
NCCL ?= 0
ifeq ($(NCCL),1)
ifneq ($(GPU),1)
$(error NCCL=1 needs GPU=1 (and MPI=1, or make cdbnet-mpi))
endif
ifeq ($(MPI),1)
CFLAGS += -DCDB_NCCL
LDLIBS += -lnccl
endif
endif

# OPENCV=1: image files decoded by OpenCV 4 (libopencv-dev; a C++ file
# behind a C interface) instead of stb_image.
CXX ?= c++
CXXFLAGS_OPENCV =
ifeq ($(OPENCV),1)
OPENCV_PC := $(shell pkg-config --exists opencv4 2>/dev/null && echo opencv4)
ifeq ($(OPENCV_PC),)
$(error OPENCV=1 needs OpenCV 4 and pkg-config: scripts/install_deps.sh --opencv (Debian libopencv-dev))
endif
CFLAGS += -DOPENCV
CXXFLAGS_OPENCV = $(shell pkg-config --cflags opencv4)
LDLIBS += $(shell pkg-config --libs opencv4) -lstdc++
endif
ifeq ($(GPU),1)
CFLAGS += -DGPU -I$(CUDA_PATH)/include
LDFLAGS += -L$(CUDA_PATH)/lib64 -Wl,-rpath,$(CUDA_PATH)/lib64
LDLIBS += -lcudart -lcublas -lstdc++
NVFLAGS = $(ARCH) $(INCLUDES) -O3 -Xcompiler -fPIC -DGPU
ifeq ($(DEBUG_SYNC),1)
NVFLAGS += -DCUDA_DEBUG_SYNC
endif
ifeq ($(CUDNN),1)
CFLAGS += -DCUDNN
NVFLAGS += -DCUDNN
# cuDNN from CUDA_PATH, or from CUDNN_PATH (its include/ and lib/); when
# CUDA_PATH has no cudnn.h, the pip wheel nvidia-cudnn-cu13 of the python3 on
# PATH (as PyTorch installs it; a namespace package, found by its __path__)
# is found by itself; with neither, make stops and says so.
CUDNN_PATH ?= $(shell [ -f $(CUDA_PATH)/include/cudnn.h ] || python3 -c \
                "import nvidia.cudnn as m; print(list(m.__path__)[0])" 2>/dev/null)
ifeq ($(CUDNN_PATH)$(wildcard $(CUDA_PATH)/include/cudnn.h),)
$(error CUDNN=1: no cudnn.h in $(CUDA_PATH)/include and no nvidia-cudnn wheel for python3: install cuDNN, or give CUDNN_PATH=DIR (its include/ and lib/))
endif
ifneq ($(CUDNN_PATH),)
CFLAGS += -I$(CUDNN_PATH)/include
NVFLAGS += -I$(CUDNN_PATH)/include
LDFLAGS += -L$(CUDNN_PATH)/lib -Wl,-rpath,$(CUDNN_PATH)/lib
endif
# the wheel ships libcudnn.so.9 without the unversioned link name
LDLIBS += $(if $(CUDNN_PATH),$(if $(wildcard $(CUDNN_PATH)/lib/libcudnn.so),-lcudnn,-l:libcudnn.so.9),-lcudnn)
endif
endif

# Objects go to a folder per configuration, obj/ID (ID: a checksum of the
# compiler and its flags; obj/ID/flags says which), so that switching a
# make variable and back recompiles nothing. The programs and archives at
# the top are relinked whenever the configuration differs from the last
# build's (obj/current).
CONFIG_ID := $(shell echo '$(CC) $(CFLAGS) $(NVCC) $(NVFLAGS) $(LDFLAGS) $(LDLIBS)' | cksum | cut -d' ' -f1)
OBJ := obj/$(CONFIG_ID)
CONFIG_STAMP := obj/current
ifeq ($(filter clean,$(MAKECMDGOALS)),)
$(shell mkdir -p $(OBJ) && [ -f $(OBJ)/flags ] || echo '$(CC) $(CFLAGS) | $(NVFLAGS) | $(LDLIBS)' > $(OBJ)/flags; \
        [ "$$(cat $(CONFIG_STAMP) 2>/dev/null)" = "$(CONFIG_ID)" ] || echo $(CONFIG_ID) > $(CONFIG_STAMP))
endif

LIB_SRC = $(filter-out src/cli/%,$(wildcard $(addsuffix /*.c,$(SRC_DIRS))))
CLI_SRC = $(wildcard src/cli/*.c)
CLI_OBJ = $(CLI_SRC:src/%.c=$(OBJ)/%.o)
LIB_OBJ = $(LIB_SRC:src/%.c=$(OBJ)/%.o)
CU_SRC = $(if $(filter 1,$(GPU)),$(wildcard $(addsuffix /*.cu,$(SRC_DIRS))))
CPP_SRC = $(if $(filter 1,$(OPENCV)),$(wildcard $(addsuffix /*.cpp,$(SRC_DIRS))))
CPP_OBJ = $(CPP_SRC:src/%.cpp=$(OBJ)/%.cpp.o)
CU_OBJ = $(CU_SRC:src/%.cu=$(OBJ)/%.cu.o)
TEST_SRC = $(wildcard tests/*.c)
TEST_OBJ = $(TEST_SRC:tests/%.c=$(OBJ)/tests/%.o)
# The GPU suite: its own main, with the shared harness and helpers.
GPU_TEST_OBJ = $(OBJ)/tests/gpu/gpu_tests.o $(OBJ)/tests/harness.o $(OBJ)/tests/helpers.o

all: cdbnet libcdbnet.so

cdbnet: $(CLI_OBJ) libcdbnet.a $(CONFIG_STAMP)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) libcdbnet.a $(LDLIBS)

libcdbnet.a: $(LIB_OBJ) $(CU_OBJ) $(CPP_OBJ) $(CONFIG_STAMP)
	rm -f $@
	ar rcs $@ $(LIB_OBJ) $(CU_OBJ) $(CPP_OBJ)

# libcdbnet.so exports exactly the functions of include/cdbnet.h (a
# version script made from the header); the rest stays inside.
$(OBJ)/cdbnet.map: include/cdbnet.h
	@mkdir -p $(@D)
	{ echo '{ global:'; grep -o '\bcdb_[a-z0-9_]*(' $< | tr -d '(' | sort -u | sed 's/$$/;/'; echo 'local: *; };'; } > $@

libcdbnet.so: $(LIB_OBJ) $(CU_OBJ) $(CPP_OBJ) $(OBJ)/cdbnet.map $(CONFIG_STAMP)
	$(CC) -shared $(LDFLAGS) -Wl,--version-script=$(OBJ)/cdbnet.map -o $@ $(LIB_OBJ) $(CU_OBJ) $(CPP_OBJ) $(LDLIBS)

# A program on the public header alone, linked against libcdbnet.so
# (examples/; the api tests run it).
tests/embed_example: examples/train_steps.c include/cdbnet.h libcdbnet.so
	$(CC) -std=c11 -Wall -Wextra -Iinclude $(filter -fsanitize%,$(OPT)) $< -L. -lcdbnet -Wl,-rpath,'$$ORIGIN/..' -lm -o $@

# ./cdbnet-mpi: cdbnet with Open MPI (data-parallel training, mpirun -np N
# ./cdbnet-mpi train CFG), beside ./cdbnet and from the same objects but
# the one file MPI changes (core/dist.c), compiled again with mpicc's
# flags (and NCCL's with GPU=1 NCCL=1).
MPI_ONLY_SRC = src/core/dist.c
MPI_ONLY_OBJ = $(MPI_ONLY_SRC:src/%.c=$(OBJ)/mpi$(NCCL)/%.o)
cdbnet-mpi: $(CLI_OBJ) $(filter-out $(MPI_ONLY_SRC:src/%.c=$(OBJ)/%.o),$(LIB_OBJ)) $(MPI_ONLY_OBJ) $(CU_OBJ) $(CPP_OBJ) $(CONFIG_STAMP)
	@mpicc --showme:link > /dev/null 2>&1 || { echo "cdbnet-mpi needs Open MPI: scripts/install_deps.sh (Debian libopenmpi-dev)" >&2; exit 1; }
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LDLIBS) $(if $(filter 1,$(NCCL)),-lnccl) $$(mpicc --showme:link)

$(OBJ)/mpi$(NCCL)/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DCDB_MPI $(if $(filter 1,$(NCCL)),-DCDB_NCCL) $$(mpicc --showme:compile) -c $< -o $@

$(OBJ)/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(OBJ)/%.cpp.o: src/%.cpp
	@mkdir -p $(@D)
	$(CXX) -O2 -fPIC -Wall -Wextra $(INCLUDES) $(CXXFLAGS_OPENCV) -c $< -o $@

$(OBJ)/%.cu.o: src/%.cu
	@mkdir -p $(@D)
	$(NVCC) $(NVFLAGS) -MMD -MP -MF $(@:.o=.d) -c $< -o $@

$(OBJ)/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests -Itests/gpu -c $< -o $@

tests/run_tests: $(TEST_OBJ) libcdbnet.a $(CONFIG_STAMP)
	$(CC) $(LDFLAGS) -o $@ $(TEST_OBJ) libcdbnet.a $(LDLIBS)

tests/gpu_tests: $(GPU_TEST_OBJ) libcdbnet.a $(CONFIG_STAMP)
	$(CC) $(LDFLAGS) -o $@ $(GPU_TEST_OBJ) libcdbnet.a $(LDLIBS)

# The CUDA files that have a cuDNN and a non-cuDNN path, compiled without
# cuDNN (CI compiles the GPU=1 CUDNN=1 build and this check, not a whole
# second GPU build).
CUDNN_BRANCHED_CU = $(shell grep -l 'ifdef CUDNN\|ifndef CUDNN' $(wildcard $(addsuffix /*.cu,$(SRC_DIRS))))
gpu-nocudnn-check:
	@mkdir -p $(OBJ)/nocudnn
	$(foreach f,$(CUDNN_BRANCHED_CU),$(NVCC) $(filter-out -DCUDNN,$(NVFLAGS)) -c $(f) -o $(OBJ)/nocudnn/$(notdir $(basename $(f))).o &&) true

# CPU against GPU for every layer type and whole training steps: needs a
# CUDA device and a build with GPU=1 (and CUDNN=1 for the cuDNN paths).
gpu-test: cdbnet tests/gpu_tests
ifneq ($(GPU),1)
	$(error gpu-test needs GPU=1, e.g. make GPU=1 CUDNN=1 gpu-test)
endif
	OMP_WAIT_POLICY=passive ./tests/gpu_tests

# Passive OpenMP waits: spinning threads make a loaded 2-core machine crawl.
# With Open MPI installed, ./cdbnet-mpi (make cdbnet-mpi) too, for the
# data-parallel tests.
test: cdbnet tests/run_tests tests/embed_example $(if $(shell command -v mpicc),cdbnet-mpi)
	scripts/check_includes.sh
	OMP_WAIT_POLICY=passive ./tests/run_tests

# libFuzzer harnesses (tests/fuzz) under ASan + UBSan, FUZZ_SECONDS each
# (default 60); needs clang (scripts/install_deps.sh --fuzz).
fuzz:
	scripts/fuzz.sh

clean:
	rm -rf obj obj-fuzz obj-mpi cdbnet cdbnet-mpi libcdbnet.a libcdbnet.so tests/run_tests tests/gpu_tests tests/embed_example

.PHONY: all test gpu-test gpu-nocudnn-check fuzz clean
-include $(wildcard $(OBJ)/*/*.d $(OBJ)/tests/*.d $(OBJ)/tests/gpu/*.d $(OBJ)/mpi*/*/*.d)
