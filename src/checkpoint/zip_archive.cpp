#include "checkpoint/zip_archive.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

namespace sparser::checkpoint {

namespace {

constexpr uint32_t kLocalHeaderSignature = 0x04034b50;
constexpr uint32_t kCentralHeaderSignature = 0x02014b50;
constexpr uint32_t kEndOfCentralDirectorySignature = 0x06054b50;
constexpr uint32_t kZip64EndOfCentralDirectorySignature = 0x06064b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr uint64_t kLocalHeaderSize = 30;
constexpr uint64_t kCentralHeaderSize = 46;
constexpr uint64_t kEndOfCentralDirectorySize = 22;
constexpr uint64_t kZip64LocatorSize = 20;
constexpr uint64_t kZip64EndOfCentralDirectorySize = 56;
constexpr uint16_t kZip64ExtraId = 0x0001;
// PyTorch pads local headers with an extra field of this id so tensor data is aligned.
constexpr uint16_t kPaddingExtraId = 0x4246;  // "FB"
constexpr uint64_t kDataAlignment = 64;
constexpr uint16_t kFlagEncrypted = 0x0001;
constexpr uint16_t kFlagUtf8 = 0x0800;
// 1980-01-01 00:00: fixed, so that equal checkpoints are equal files.
constexpr uint16_t kDosDate = (1 << 5) | 1;
constexpr uint16_t kDosTime = 0;

// Little-endian field access into a buffer whose size the caller has checked.
uint16_t u16(const unsigned char* p) { return uint16_t(p[0] | (p[1] << 8)); }
uint32_t u32(const unsigned char* p) { return uint32_t(u16(p)) | (uint32_t(u16(p + 2)) << 16); }
uint64_t u64(const unsigned char* p) { return uint64_t(u32(p)) | (uint64_t(u32(p + 4)) << 32); }

void put16(std::string& out, uint16_t v) {
  out.push_back(char(v & 0xff));
  out.push_back(char(v >> 8));
}
void put32(std::string& out, uint32_t v) {
  put16(out, uint16_t(v & 0xffff));
  put16(out, uint16_t(v >> 16));
}

// Whether [offset, offset + size) lies within [0, limit), without overflow.
bool within(uint64_t offset, uint64_t size, uint64_t limit) { return offset <= limit && size <= limit - offset; }

uint32_t crc32_of(const void* data, uint64_t size) {
  uLong crc = crc32(0L, Z_NULL, 0);
  auto bytes = static_cast<const Bytef*>(data);
  // zlib counts in uInt; feed large entries in pieces.
  while (size > 0) {
    const auto piece = uInt(std::min<uint64_t>(size, 1u << 30));
    crc = crc32(crc, bytes, piece);
    bytes += piece;
    size -= piece;
  }
  return uint32_t(crc);
}

// Reads the ZIP64 extended-information extra field: it holds, in this order, exactly
// those of the 32-bit fields that were saturated to 0xFFFFFFFF.
void apply_zip64_extra(const unsigned char* extra, uint64_t extra_size, ZipEntry& entry, bool size_saturated,
                       bool compressed_saturated, bool offset_saturated, const std::string& where) {
  uint64_t pos = 0;
  while (pos + 4 <= extra_size) {
    const uint16_t id = u16(extra + pos);
    const uint16_t length = u16(extra + pos + 2);
    pos += 4;
    if (!within(pos, length, extra_size)) throw std::runtime_error(where + ": extra field runs past its header");
    if (id == kZip64ExtraId) {
      uint64_t field = pos;
      auto next = [&](uint64_t& value) {
        if (field + 8 > pos + length) throw std::runtime_error(where + ": ZIP64 extra field too short");
        value = u64(extra + field);
        field += 8;
      };
      if (size_saturated) next(entry.size);
      if (compressed_saturated) next(entry.compressed_size);
      if (offset_saturated) next(entry.local_header_offset);
      return;
    }
    pos += length;
  }
  if (size_saturated || compressed_saturated || offset_saturated)
    throw std::runtime_error(where + ": 32-bit size or offset saturated but no ZIP64 extra field");
}

}  // namespace

ZipReader::ZipReader(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail(std::string("cannot open: ") + std::strerror(errno));
  struct stat info {};
  if (::fstat(fd_, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd_);
    fd_ = -1;
    throw CheckpointError(path_ + ": not a regular file");
  }
  file_size_ = uint64_t(info.st_size);
  try {
    if (file_size_ < kEndOfCentralDirectorySize)
      fail("not a zip archive (" + std::to_string(file_size_) + " bytes, too short; truncated?)");

    // The end-of-central-directory record closes the file, followed by a comment of up to 64 KiB.
    // Bytes after the comment (a file copied with padding, a stray newline) are tolerated, as
    // Python's zipfile and torch.load's miniz do: the last record whose comment fits counts.
    const uint64_t tail_size = std::min<uint64_t>(file_size_, kEndOfCentralDirectorySize + 0xffff);
    std::vector<unsigned char> tail(tail_size);
    read_at(file_size_ - tail_size, tail_size, tail.data(), "end of archive");
    int64_t eocd = -1;
    for (int64_t pos = int64_t(tail_size - kEndOfCentralDirectorySize); pos >= 0; --pos) {
      if (u32(&tail[pos]) == kEndOfCentralDirectorySignature &&
          uint64_t(pos) + kEndOfCentralDirectorySize + u16(&tail[pos + 20]) <= tail_size) {
        eocd = pos;
        break;
      }
    }
    if (eocd < 0) fail("not a zip archive (no end-of-central-directory record; truncated or not a checkpoint?)");
    const unsigned char* record = &tail[eocd];
    uint64_t entry_count = u16(record + 10);
    uint64_t directory_size = u32(record + 12);
    uint64_t directory_offset = u32(record + 16);
    const uint64_t eocd_offset = file_size_ - tail_size + uint64_t(eocd);

    // ZIP64: a locator right before the record points at the 64-bit version of it.
    if (eocd_offset >= kZip64LocatorSize) {
      unsigned char locator[kZip64LocatorSize];
      read_at(eocd_offset - kZip64LocatorSize, kZip64LocatorSize, locator, "ZIP64 locator");
      if (u32(locator) == kZip64LocatorSignature) {
        const uint64_t zip64_offset = u64(locator + 8);
        if (!within(zip64_offset, kZip64EndOfCentralDirectorySize, eocd_offset))
          fail("ZIP64 end-of-central-directory offset out of range");
        unsigned char zip64[kZip64EndOfCentralDirectorySize];
        read_at(zip64_offset, sizeof(zip64), zip64, "ZIP64 end of central directory");
        if (u32(zip64) != kZip64EndOfCentralDirectorySignature) fail("bad ZIP64 end-of-central-directory signature");
        entry_count = u64(zip64 + 32);
        directory_size = u64(zip64 + 40);
        directory_offset = u64(zip64 + 48);
      }
    }
    if (!within(directory_offset, directory_size, file_size_))
      fail("central directory (offset " + std::to_string(directory_offset) + ", " + std::to_string(directory_size) +
           " bytes) lies outside the file; truncated?");
    // Each entry takes at least a fixed header: this bounds the count before any allocation.
    if (entry_count > directory_size / kCentralHeaderSize)
      fail("central directory claims " + std::to_string(entry_count) + " entries in " + std::to_string(directory_size) +
           " bytes");

    std::vector<unsigned char> directory(directory_size);
    read_at(directory_offset, directory_size, directory.data(), "central directory");
    uint64_t pos = 0;
    entries_.reserve(entry_count);
    for (uint64_t i = 0; i < entry_count; ++i) {
      const std::string where = "central directory entry " + std::to_string(i);
      if (!within(pos, kCentralHeaderSize, directory_size)) fail(where + " runs past the directory");
      const unsigned char* header = &directory[pos];
      if (u32(header) != kCentralHeaderSignature) fail(where + ": bad signature");
      const uint16_t flags = u16(header + 8);
      const uint64_t name_size = u16(header + 28), extra_size = u16(header + 30), comment_size = u16(header + 32);
      if (!within(pos + kCentralHeaderSize, name_size + extra_size + comment_size, directory_size))
        fail(where + ": name or extra field runs past the directory");
      ZipEntry entry;
      entry.method = u16(header + 10);
      entry.crc32 = u32(header + 16);
      entry.compressed_size = u32(header + 20);
      entry.size = u32(header + 24);
      entry.local_header_offset = u32(header + 42);
      entry.name.assign(reinterpret_cast<const char*>(header + kCentralHeaderSize), name_size);
      try {
        apply_zip64_extra(header + kCentralHeaderSize + name_size, extra_size, entry, entry.size == 0xffffffff,
                          entry.compressed_size == 0xffffffff, entry.local_header_offset == 0xffffffff,
                          where + " (" + entry.name + ")");
      } catch (const std::runtime_error& e) {
        fail(e.what());
      }
      if (flags & kFlagEncrypted) fail("entry " + entry.name + " is encrypted");
      if (entry.method != 0 && entry.method != 8)
        fail("entry " + entry.name + " uses unsupported compression method " + std::to_string(entry.method));
      if (entry.method == 0 && entry.compressed_size != entry.size)
        fail("stored entry " + entry.name + " has different compressed and uncompressed sizes");
      // Bound the sizes by the file before anyone allocates buffers for them; deflate
      // cannot expand data more than 1032-fold.
      if (!within(entry.local_header_offset, entry.compressed_size, file_size_) ||
          (entry.method == 8 && entry.size > entry.compressed_size * 1032 + 1024))
        fail("entry " + entry.name + " claims " + std::to_string(entry.size) + " bytes at offset " +
             std::to_string(entry.local_header_offset) + ", beyond the " + std::to_string(file_size_) +
             "-byte file; truncated or corrupt?");
      entries_.push_back(std::move(entry));
      pos += kCentralHeaderSize + name_size + extra_size + comment_size;
    }
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
}

ZipReader::~ZipReader() {
  if (fd_ >= 0) ::close(fd_);
}

const ZipEntry* ZipReader::find(const std::string& name) const {
  for (const auto& entry : entries_)
    if (entry.name == name) return &entry;
  return nullptr;
}

void ZipReader::fail(const std::string& problem) const { throw CheckpointError(path_ + ": " + problem); }

void ZipReader::read_at(uint64_t offset, uint64_t size, void* destination, const char* what) const {
  if (!within(offset, size, file_size_))
    fail(std::string(what) + " (offset " + std::to_string(offset) + ", " + std::to_string(size) +
         " bytes) lies past the end of the " + std::to_string(file_size_) + "-byte file; truncated?");
  auto out = static_cast<char*>(destination);
  while (size > 0) {
    const auto piece = size_t(std::min<uint64_t>(size, 1u << 30));
    const ssize_t got = ::pread(fd_, out, piece, off_t(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) fail(std::string("cannot read ") + what + (got < 0 ? std::string(": ") + std::strerror(errno) : ""));
    out += got;
    offset += uint64_t(got);
    size -= uint64_t(got);
  }
}

uint64_t ZipReader::data_offset(const ZipEntry& entry) const {
  unsigned char header[kLocalHeaderSize];
  read_at(entry.local_header_offset, kLocalHeaderSize, header, ("local header of " + entry.name).c_str());
  if (u32(header) != kLocalHeaderSignature) fail("entry " + entry.name + ": bad local header signature");
  // The local header's sizes may be zero (data descriptor); the central directory's are authoritative.
  const uint64_t offset = entry.local_header_offset + kLocalHeaderSize + u16(header + 26) + u16(header + 28);
  if (!within(offset, entry.compressed_size, file_size_))
    fail("data of " + entry.name + " (" + std::to_string(entry.compressed_size) + " bytes at offset " +
         std::to_string(offset) + ") lies past the end of the " + std::to_string(file_size_) +
         "-byte file; truncated?");
  return offset;
}

void ZipReader::read(const ZipEntry& entry, void* destination) const {
  const uint64_t offset = data_offset(entry);
  if (entry.method == 0) {
    read_at(offset, entry.size, destination, entry.name.c_str());
  } else {
    std::vector<unsigned char> compressed(entry.compressed_size);
    read_at(offset, entry.compressed_size, compressed.data(), entry.name.c_str());
    z_stream stream{};
    if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) fail("cannot initialise zlib for " + entry.name);
    uint64_t consumed = 0, produced = 0;
    int status = Z_OK;
    // zlib counts in uInt; hand over at most 1 GiB of input and output at a time. Running out of
    // either before the end of the stream makes inflate report Z_BUF_ERROR, ending the loop.
    while (status == Z_OK) {
      const uint64_t in_piece = std::min<uint64_t>(compressed.size() - consumed, 1u << 30);
      const uint64_t out_piece = std::min<uint64_t>(entry.size - produced, 1u << 30);
      stream.next_in = compressed.data() + consumed;
      stream.avail_in = uInt(in_piece);
      stream.next_out = static_cast<Bytef*>(destination) + produced;
      stream.avail_out = uInt(out_piece);
      status = inflate(&stream, Z_NO_FLUSH);
      consumed += in_piece - stream.avail_in;
      produced += out_piece - stream.avail_out;
    }
    inflateEnd(&stream);
    if (status != Z_STREAM_END || produced != entry.size)
      fail("entry " + entry.name + " is not valid deflate data of " + std::to_string(entry.size) + " bytes");
  }
  if (crc32_of(destination, entry.size) != entry.crc32) fail("entry " + entry.name + " fails its CRC-32 check");
}

std::string ZipReader::read(const ZipEntry& entry) const {
  std::string data(entry.size, '\0');
  read(entry, data.data());
  return data;
}

ZipWriter::ZipWriter(const std::string& path) : path_(path), out_(path, std::ios::binary | std::ios::trunc) {
  if (!out_) fail(std::string("cannot create file: ") + std::strerror(errno));
}

void ZipWriter::fail(const std::string& problem) const { throw CheckpointError(path_ + ": " + problem); }

void ZipWriter::write(const void* data, uint64_t size) {
  out_.write(static_cast<const char*>(data), std::streamsize(size));
  if (!out_) fail("write failed (disk full?)");
  offset_ += size;
}

void ZipWriter::add(const std::string& name, const void* data, uint64_t size) {
  constexpr uint64_t k32BitLimit = std::numeric_limits<uint32_t>::max();
  if (size >= k32BitLimit || offset_ >= k32BitLimit)
    fail("archive would exceed 4 GiB at entry " + name + "; writing ZIP64 archives is not supported");
  if (name.size() > 0xffff) fail("entry name too long: " + name.substr(0, 64) + "...");
  ZipEntry entry{name, 0, crc32_of(data, size), size, size, offset_};

  // Pad the extra field so the data starts on a 64-byte boundary, as PyTorch does
  // (lets readers map tensor data in place).
  const uint64_t unpadded_end = offset_ + kLocalHeaderSize + name.size() + 4;
  const uint64_t padding = (kDataAlignment - unpadded_end % kDataAlignment) % kDataAlignment;
  std::string header;
  put32(header, kLocalHeaderSignature);
  put16(header, 20);  // version needed: 2.0
  put16(header, kFlagUtf8);
  put16(header, 0);  // stored
  put16(header, kDosTime);
  put16(header, kDosDate);
  put32(header, entry.crc32);
  put32(header, uint32_t(size));
  put32(header, uint32_t(size));
  put16(header, uint16_t(name.size()));
  put16(header, uint16_t(4 + padding));
  header += name;
  put16(header, kPaddingExtraId);
  put16(header, uint16_t(padding));
  header.append(padding, 'Z');
  write(header.data(), header.size());
  write(data, size);
  entries_.push_back(std::move(entry));
}

void ZipWriter::finish() {
  if (entries_.size() >= 0xffff) fail("too many entries for a non-ZIP64 archive");
  const uint64_t directory_offset = offset_;
  std::string directory;
  for (const auto& entry : entries_) {
    put32(directory, kCentralHeaderSignature);
    put16(directory, 20);  // made by: MS-DOS attributes, version 2.0
    put16(directory, 20);
    put16(directory, kFlagUtf8);
    put16(directory, 0);
    put16(directory, kDosTime);
    put16(directory, kDosDate);
    put32(directory, entry.crc32);
    put32(directory, uint32_t(entry.size));
    put32(directory, uint32_t(entry.size));
    put16(directory, uint16_t(entry.name.size()));
    put16(directory, 0);  // extra field
    put16(directory, 0);  // comment
    put16(directory, 0);  // disk number
    put16(directory, 0);  // internal attributes
    put32(directory, 0);  // external attributes
    put32(directory, uint32_t(entry.local_header_offset));
    directory += entry.name;
  }
  const uint64_t directory_size = directory.size();
  if (directory_offset + directory_size >= std::numeric_limits<uint32_t>::max())
    fail("archive would exceed 4 GiB; writing ZIP64 archives is not supported");
  put32(directory, kEndOfCentralDirectorySignature);
  put16(directory, 0);  // this disk
  put16(directory, 0);  // disk holding the directory
  put16(directory, uint16_t(entries_.size()));
  put16(directory, uint16_t(entries_.size()));
  put32(directory, uint32_t(directory_size));
  put32(directory, uint32_t(directory_offset));
  put16(directory, 0);  // comment length
  write(directory.data(), directory.size());
  out_.close();
  if (!out_) fail("cannot close file (disk full?)");
}

}  // namespace sparser::checkpoint
