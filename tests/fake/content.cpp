#include "content.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace apsis_fake {

namespace {

constexpr std::uint64_t rows_per_block = 1000;
constexpr std::size_t number_width = 10;
constexpr std::size_t high_digits = 7;
constexpr std::uint64_t high_modulus = 10'000'000;

constexpr std::array<std::string_view, 8> segments{"gold", "blue", "teal", "rose",
                                                   "mint", "sand", "jade", "ruby"};

std::uint32_t fnv1a(std::string_view text)
{
    std::uint32_t hash = 2166136261U;
    for (unsigned char c : text)
        hash = (hash ^ c) * 16777619U;
    return hash;
}

std::string hex8(std::uint32_t value)
{
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(8, '0');
    for (int i = 7; i >= 0; --i, value >>= 4)
        out[static_cast<std::size_t>(i)] = digits[value & 0xf];
    return out;
}

void write_digits(char* out, std::size_t width, std::uint64_t value)
{
    for (std::size_t i = width; i-- > 0; value /= 10)
        out[i] = static_cast<char>('0' + value % 10);
}

// Appends one row, noting where each row-number field starts.
class RowWriter {
public:
    RowWriter(std::string& out, std::vector<std::uint32_t>& numbers) : out_(out), numbers_(numbers) {}

    RowWriter& text(std::string_view s)
    {
        out_ += s;
        return *this;
    }

    RowWriter& number(std::uint64_t row)
    {
        numbers_.push_back(static_cast<std::uint32_t>(out_.size()));
        out_.append(number_width, '0');
        write_digits(out_.data() + out_.size() - number_width, number_width, row);
        return *this;
    }

private:
    std::string& out_;
    std::vector<std::uint32_t>& numbers_;
};

void append_le(std::string& out, std::uint32_t value, int bytes)
{
    for (int i = 0; i < bytes; ++i, value >>= 8)
        out.push_back(static_cast<char>(value & 0xff));
}

// A zip local file header for a stored sheet entry: enough for "looks like xlsx".
std::string xlsx_prefix()
{
    constexpr std::string_view name = "xl/worksheets/sheet1.xml";
    std::string out = "PK\x03\x04";
    append_le(out, 20, 2);     // version needed
    append_le(out, 0, 2);      // flags
    append_le(out, 0, 2);      // method: stored
    append_le(out, 0, 2);      // time
    append_le(out, 0x21, 2);   // date: 1980-01-01
    append_le(out, 0, 4);      // crc32 (unknown, it is fake)
    append_le(out, 0xffffffffU, 4);
    append_le(out, 0xffffffffU, 4);
    append_le(out, name.size(), 2);
    append_le(out, 0, 2);      // extra length
    out += name;
    out += "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
           "<worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><sheetData>\n";
    return out;
}

} // namespace

Content::Content(Format format, std::string_view export_id, std::uint64_t size)
{
    build_template(format, export_id);
    place_suffix(format, size);
}

void Content::place_suffix(Format format, std::uint64_t asked_size)
{
    if (format == Format::json) {
        // Each row ends in ",\n"; the last one gives those two bytes up to the suffix.
        std::uint64_t row_size = block_.size() / rows_per_block;
        std::uint64_t room = asked_size > prefix_.size() + 1 ? asked_size - prefix_.size() - 1 : 0;
        std::uint64_t rows = std::max<std::uint64_t>(1, room / row_size);
        suffix_ = "\n]\n";
        rows_end_ = prefix_.size() + rows * row_size - 2;
        size_ = rows_end_ + suffix_.size();
        return;
    }
    suffix_ = format == Format::csv && asked_size > 0 ? "\n" : "";
    size_ = asked_size;
    rows_end_ = size_ - suffix_.size();
}

void Content::build_template(Format format, std::string_view export_id)
{
    std::uint32_t hash = fnv1a(export_id);
    std::string tag = hex8(hash);
    prefix_ = format == Format::csv ? std::string("profile_key,email,segment\n")
              : format == Format::json ? std::string("[\n")
                                       : xlsx_prefix();

    std::vector<std::uint32_t> numbers;
    for (std::uint64_t r = 0; r < rows_per_block; ++r) {
        RowWriter row(block_, numbers);
        // rows_per_block is a multiple of segments.size(), so the segment only
        // depends on the in-block row and the template stays valid for every block.
        auto segment = segments[(r + hash) % segments.size()];
        if (format == Format::csv)
            row.text("pk-").text(tag).text("-").number(r).text(",user").number(r).text(".").text(tag)
                .text("@example.com,").text(segment).text("\n");
        else if (format == Format::json)
            row.text("{\"profile_key\":\"pk-").text(tag).text("-").number(r).text("\",\"email\":\"user").number(r)
                .text(".").text(tag).text("@example.com\",\"segment\":\"").text(segment).text("\"},\n");
        else
            row.text("<row r=\"").number(r).text("\"><c t=\"inlineStr\"><is><t>pk-").text(tag).text("-")
                .number(r).text("</t></is></c><c t=\"inlineStr\"><is><t>").text(segment)
                .text("</t></is></c></row>\n");
    }
    high_digits_at_ = std::move(numbers);
}

void Content::load_block(std::uint64_t index)
{
    if (index == block_index_)
        return;
    char digits[high_digits];
    write_digits(digits, high_digits, index % high_modulus);
    for (auto at : high_digits_at_)
        std::memcpy(block_.data() + at, digits, high_digits);
    block_index_ = index;
}

std::string_view Content::view(std::uint64_t offset, std::uint64_t end)
{
    end = std::min(end, size_);
    if (offset >= end)
        return {};
    if (offset < prefix_.size())
        return std::string_view(prefix_).substr(offset, std::min<std::uint64_t>(end, prefix_.size()) - offset);
    if (offset >= rows_end_)
        return std::string_view(suffix_).substr(offset - rows_end_, end - offset);
    return row_view(offset, std::min(end, rows_end_));
}

std::string_view Content::row_view(std::uint64_t offset, std::uint64_t end)
{
    std::uint64_t relative = offset - prefix_.size();
    std::uint64_t within = relative % block_.size();
    load_block(relative / block_.size());
    auto length = std::min<std::uint64_t>(block_.size() - within, end - offset);
    return std::string_view(block_).substr(within, length);
}

} // namespace apsis_fake
