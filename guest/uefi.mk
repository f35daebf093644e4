# The UEFI build of the reference guest: BOOTX64.EFI, the disk image, and `make run`.
# Included at the end of guest/Makefile, which defines CORE_SRCS, AVX2_SRCS and
# CORE_CFLAGS (paths relative to guest/). Run from guest/ (make -C guest ...).
#
#   make                     build/BOOTX64.EFI
#   make image               build/disk.img (GPT + FAT ESP, via pytest_baremetal.image)
#   make run                 boot build/disk.img under QEMU TCG, console on this terminal
#   make run CPU=qemu64      the same without AVX (the portable kernel)
#
# Variables: CPU, MACHINE, MEM, OVMF, QEMU, MODEL, TOKENIZER, RUN_CFG, TIMEOUT.

UEFI_MK_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
REPO_ROOT := $(abspath $(UEFI_MK_DIR)/..)

BUILD ?= build
UEFI_OBJ := $(BUILD)/uefi
EFI_APP := $(BUILD)/BOOTX64.EFI
DISK_IMG := $(BUILD)/disk.img

# gnu-efi (Debian's gnu-efi package).
EFI_INC ?= /usr/include/efi
EFI_LIB ?= /usr/lib
EFI_CRT0 ?= $(EFI_LIB)/crt0-efi-x86_64.o
EFI_LDS ?= $(EFI_LIB)/elf_x86_64_efi.lds

UEFI_CC ?= gcc
UEFI_LD ?= ld
UEFI_OBJCOPY ?= objcopy

UEFI_SRCS := $(UEFI_MK_DIR)/src/uefi/efi_main.c \
             $(UEFI_MK_DIR)/src/uefi/console_uefi.c \
             $(UEFI_MK_DIR)/src/uefi/file_uefi.c \
             $(UEFI_MK_DIR)/src/uefi/memory_uefi.c \
             $(UEFI_MK_DIR)/src/uefi/timer_uefi.c \
             $(UEFI_MK_DIR)/src/uefi/acpi_uefi.c \
             $(UEFI_MK_DIR)/src/uefi/cpu_uefi.c \
             $(UEFI_MK_DIR)/src/uefi/platform_uefi.c \
             $(UEFI_MK_DIR)/src/uefi/net_uefi.c

# Freestanding code for a UEFI application: MS-ABI calls into the firmware, no red zone
# (firmware interrupts use our stack), position-independent (relocated by gnu-efi's
# _relocate), 16-bit wchar_t for CHAR16 literals.
UEFI_BASE_CFLAGS := -std=c11 -O2 -ffreestanding -fno-stack-protector -fno-stack-check \
                    -fpic -fshort-wchar -mno-red-zone -maccumulate-outgoing-args \
                    -Wall -Wextra -MMD -MP
UEFI_CFLAGS := $(CORE_CFLAGS) $(UEFI_BASE_CFLAGS)
UEFI_PLAT_CFLAGS := $(UEFI_CFLAGS) -I$(UEFI_MK_DIR)/src -I$(EFI_INC) -I$(EFI_INC)/x86_64 \
                    -DGNU_EFI_USE_MS_ABI
UEFI_AVX2_CFLAGS := $(UEFI_CFLAGS) $(or $(AVX2_CFLAGS),-mavx2 -mfma)

# Objects keep their source path under build/uefi/ (src/model.c -> build/uefi/src/model.o).
uefi_obj = $(patsubst %.c,$(UEFI_OBJ)/%.o,$(patsubst $(UEFI_MK_DIR)/%,%,$(1)))
UEFI_CORE_OBJS := $(call uefi_obj,$(CORE_SRCS))
UEFI_AVX2_OBJS := $(call uefi_obj,$(AVX2_SRCS))
UEFI_PLAT_OBJS := $(call uefi_obj,$(UEFI_SRCS))
UEFI_ALL_OBJS := $(UEFI_CORE_OBJS) $(UEFI_AVX2_OBJS) $(UEFI_PLAT_OBJS)

# libgcc for any helper the compiler calls (128-bit division and the like).
UEFI_LIBGCC := $(shell $(UEFI_CC) -print-libgcc-file-name)

.PHONY: all efi image run
all: efi
efi: $(EFI_APP)

$(UEFI_CORE_OBJS): $(UEFI_OBJ)/%.o: $(UEFI_MK_DIR)/%.c
	@mkdir -p $(dir $@)
	$(UEFI_CC) $(UEFI_CFLAGS) -c $< -o $@

$(UEFI_AVX2_OBJS): $(UEFI_OBJ)/%.o: $(UEFI_MK_DIR)/%.c
	@mkdir -p $(dir $@)
	$(UEFI_CC) $(UEFI_AVX2_CFLAGS) -c $< -o $@

$(UEFI_PLAT_OBJS): $(UEFI_OBJ)/%.o: $(UEFI_MK_DIR)/%.c
	@mkdir -p $(dir $@)
	$(UEFI_CC) $(UEFI_PLAT_CFLAGS) -c $< -o $@

# --no-undefined: a shared link would otherwise accept a missing function silently and
# the firmware would jump to address 0.
$(BUILD)/BOOTX64.so: $(UEFI_ALL_OBJS)
	$(UEFI_LD) -nostdlib -znocombreloc -shared -Bsymbolic --no-undefined -T $(EFI_LDS) \
	    $(EFI_CRT0) $(UEFI_ALL_OBJS) -L$(EFI_LIB) -lefi -lgnuefi $(UEFI_LIBGCC) -o $@

$(EFI_APP): $(BUILD)/BOOTX64.so
	$(UEFI_OBJCOPY) -j .text -j .sdata -j .data -j .rodata -j .dynamic -j .dynsym \
	    -j .rel -j .rela -j .rel.* -j .rela.* -j .reloc \
	    --target efi-app-x86_64 --subsystem=10 $< $@

# The core's app.o carries the build id (BM_BUILD_ID): rebuild it when the id changes.
ifneq ($(BUILD_ID),)
$(filter %/src/app.o,$(UEFI_CORE_OBJS)): $(BUILD)/build-id
endif

-include $(UEFI_ALL_OBJS:.o=.d)

# ---- disk image -------------------------------------------------------------------
UEFI_PYTHON := $(if $(wildcard $(REPO_ROOT)/.venv/bin/python),$(REPO_ROOT)/.venv/bin/python,python3)

# The shipped trained model (guest/models/tiny); any llama2.c checkpoint works, e.g. one from
# tools/make_checkpoint.py --shape 15M.
MODEL ?= $(UEFI_MK_DIR)/models/tiny/model.bin
TOKENIZER ?= $(UEFI_MK_DIR)/models/tiny/tokenizer.bin
# An optional run.cfg copied to the root of the ESP (none: the guest's defaults).
RUN_CFG ?=
IMAGE_SIZE_MIB ?=

IMAGE_FILES := --file model.bin=$(MODEL) --file tokenizer.bin=$(TOKENIZER) \
               $(if $(RUN_CFG),--file run.cfg=$(RUN_CFG))

# Always recomposed: the image is cheap and its inputs can come from anywhere.
image: $(EFI_APP) $(MODEL) $(TOKENIZER) $(RUN_CFG)
	PYTHONPATH=$(REPO_ROOT) $(UEFI_PYTHON) -m pytest_baremetal.image --efi $(EFI_APP) \
	    $(IMAGE_FILES) $(if $(IMAGE_SIZE_MIB),--size-mib $(IMAGE_SIZE_MIB)) -o $(DISK_IMG)

# ---- QEMU ---------------------------------------------------------------------------
QEMU ?= qemu-system-x86_64
CPU ?= Skylake-Client
MACHINE ?= q35
MEM ?= 1024
# A unified OVMF image (CODE and VARS in one file), given to -bios.
OVMF ?= $(firstword $(wildcard /usr/share/ovmf/OVMF.fd /usr/share/qemu/OVMF.fd \
                               /usr/share/OVMF/OVMF.fd))
# Seconds before QEMU is killed (empty: no limit).
TIMEOUT ?=

# -nodefaults: no CD-ROM for OVMF to try first, no monitor on stdio. The disk is
# read-only: the guest never writes, and several QEMUs may boot one image at once.
# The serial port (COM1) is the console, on this terminal; Ctrl-C ends QEMU. The guest
# powers the machine off after [done], which makes QEMU exit by itself with status 0.
QEMU_ARGS := -nodefaults -machine $(MACHINE),accel=tcg -cpu $(CPU) -m $(MEM) \
             -bios $(OVMF) \
             -drive if=none,id=disk0,format=raw,readonly=on,file=$(DISK_IMG) \
             -device virtio-blk-pci,drive=disk0,bootindex=0 \
             -serial stdio -display none -vga none -net none -no-reboot

run: image
	@test -n "$(OVMF)" || \
	    { echo "no OVMF firmware found: apt-get install ovmf, or OVMF=path" >&2; exit 1; }
	$(if $(TIMEOUT),timeout --foreground $(TIMEOUT)) $(QEMU) $(QEMU_ARGS)
