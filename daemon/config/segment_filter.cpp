#include "config/segment_filter.hpp"

#include <algorithm>

#include "config/spelling.hpp"

namespace apsis::config {
namespace {

// Deeper than any real filter, shallow enough that a hostile one cannot exhaust the stack.
constexpr int kMaxDepth = 100;
// An unknown-name message lists this many of the defined names, then "...".
constexpr std::size_t kMaxListed = 10;

bool is_name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
         c == '.';
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

enum class TokenKind { name, bang, amp, bar, open, close, end, invalid };

struct Token {
  TokenKind kind = TokenKind::end;
  std::size_t offset = 0;
  std::string_view text;

  std::string at() const { return " at column " + std::to_string(offset + 1); }
  // For messages: 'x', or the byte's value when it would not print.
  std::string shown() const {
    const auto byte = static_cast<unsigned char>(text.empty() ? 0 : text.front());
    if (byte < 0x20 || byte == 0x7f) return "control character " + std::to_string(byte);
    return "'" + std::string(text) + "'";
  }
};

// The token starting at `offset`, after whitespace.
Token scan(std::string_view text, std::size_t offset) {
  while (offset < text.size() && is_space(text[offset])) ++offset;
  if (offset == text.size()) return {TokenKind::end, offset, {}};
  auto single = [&](TokenKind kind) { return Token{kind, offset, text.substr(offset, 1)}; };
  switch (text[offset]) {
    case '!': return single(TokenKind::bang);
    case '&': return single(TokenKind::amp);
    case '|': return single(TokenKind::bar);
    case '(': return single(TokenKind::open);
    case ')': return single(TokenKind::close);
    default: break;
  }
  std::size_t end = offset;
  while (end < text.size() && is_name_char(text[end])) ++end;
  if (end > offset) return {TokenKind::name, offset, text.substr(offset, end - offset)};
  // A multi-byte UTF-8 character is shown whole.
  std::size_t length = 1;
  if (static_cast<unsigned char>(text[offset]) >= 0xc0)
    while (length < 4 && offset + length < text.size() && (static_cast<unsigned char>(text[offset + length]) & 0xc0) == 0x80)
      ++length;
  return {TokenKind::invalid, offset, text.substr(offset, length)};
}

std::string lowercase(std::string_view word) {
  std::string lower(word);
  for (auto& c : lower)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return lower;
}

// Recursive descent, one function per precedence level. The first error ends the parse.
class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text), token_(scan(text, 0)) {}

  FilterSyntax parse() && {
    if (token_.kind == TokenKind::end)
      fail(token_, "empty expression (expected segment names joined by '&', '|' and '!')");
    else if (disjunction() && token_.kind != TokenKind::end)
      unexpected_after_operand(nullptr);
    return std::move(result_);
  }

 private:
  void advance() {
    previous_ = token_;
    token_ = scan(text_, token_.offset + token_.text.size());
  }

  bool fail(const Token& token, std::string message) {
    result_.error = FilterError{static_cast<int>(token.offset) + 1, std::move(message)};
    return false;
  }

  // or := and ('|' and)*
  bool disjunction() {
    if (!conjunction()) return false;
    while (token_.kind == TokenKind::bar) {
      advance();
      if (!conjunction()) return false;
    }
    return true;
  }

  // and := not ('&' not)*
  bool conjunction() {
    if (!negation()) return false;
    while (token_.kind == TokenKind::amp) {
      advance();
      if (!negation()) return false;
    }
    return true;
  }

  // not := '!'* operand, as a loop so that "!!!!..." cannot nest deep.
  bool negation() {
    while (token_.kind == TokenKind::bang) advance();
    return operand();
  }

  // operand := name | '(' or ')'
  bool operand() {
    if (token_.kind == TokenKind::name) {
      result_.names.push_back({std::string(token_.text), static_cast<int>(token_.offset) + 1});
      advance();
      return true;
    }
    if (token_.kind == TokenKind::open) return group();
    return missing_operand();
  }

  bool group() {
    const Token open = token_;
    if (depth_ == kMaxDepth)
      return fail(open, "parentheses nested more than " + std::to_string(kMaxDepth) + " deep" + open.at());
    ++depth_;
    advance();
    bool closed = disjunction();
    if (closed && token_.kind == TokenKind::close)
      advance();
    else if (closed)
      closed = unexpected_after_operand(&open);
    --depth_;
    return closed;
  }

  // Where a name, '!' or '(' must come.
  bool missing_operand() {
    const std::string expected = "; expected a segment name, '!' or '('";
    switch (token_.kind) {
      case TokenKind::end:
        return fail(previous_, "expression ends after " + previous_.shown() + previous_.at() + expected);
      case TokenKind::close:
        if (previous_.kind == TokenKind::open) return fail(previous_, "empty parentheses" + previous_.at());
        return fail(token_, "unexpected ')'" + token_.at() + expected);
      case TokenKind::amp:
      case TokenKind::bar:
        if (previous_.kind == token_.kind && previous_.offset + 1 == token_.offset)
          return fail(previous_, "'" + std::string(2, text_[previous_.offset]) + "'" + previous_.at() +
                                     ": write a single " + previous_.shown());
        return fail(token_, "unexpected " + token_.shown() + token_.at() + expected);
      case TokenKind::invalid:
        return invalid_character();
      default:
        return fail(token_, "unexpected " + token_.shown() + token_.at() + expected);
    }
  }

  // After a whole operand: only an operator, or the ')' / end that closes it, may follow.
  bool unexpected_after_operand(const Token* open) {
    switch (token_.kind) {
      case TokenKind::end:
        return fail(*open, "unbalanced parenthesis: '('" + open->at() + " is never closed");
      case TokenKind::close:
        return fail(token_, "unbalanced parenthesis: ')'" + token_.at() + " has no matching '('");
      case TokenKind::invalid:
        return invalid_character();
      case TokenKind::name:
        if (const auto word = lowercase(token_.text); word == "and" || word == "or")
          return fail(token_, token_.shown() + token_.at() + " is not an operator: write '" +
                                  (word == "and" ? "&" : "|") + "'");
        [[fallthrough]];
      default:
        return fail(token_, "missing '&' or '|' before " + token_.shown() + token_.at());
    }
  }

  bool invalid_character() {
    return fail(token_, "unexpected " + token_.shown() + token_.at() +
                            ": a filter is segment names (letters, digits, '_', '-', '.') with '!', '&', '|' "
                            "and parentheses");
  }

  std::string_view text_;
  Token token_;
  Token previous_;
  int depth_ = 0;
  FilterSyntax result_;
};

std::string unknown_name_message(const FilterName& use, const std::set<std::string>& defined) {
  std::string message = "unknown segment '" + use.name + "' at column " + std::to_string(use.column);
  if (defined.empty()) return message + " (no segments are defined)";
  std::vector<std::string_view> names(defined.begin(), defined.end());
  message += " (defined: ";
  for (std::size_t i = 0; i < names.size() && i < kMaxListed; ++i) message += (i > 0 ? ", " : "") + std::string(names[i]);
  message += names.size() > kMaxListed ? ", ...)" : ")";
  const auto max_distance = std::clamp<std::size_t>(use.name.size() / 3, 1, 2);
  if (const auto suggestion = closest_spelling(use.name, names, max_distance))
    message += "; did you mean '" + std::string(*suggestion) + "'?";
  return message;
}

}  // namespace

FilterSyntax parse_segment_filter(std::string_view expression) { return Parser(expression).parse(); }

std::vector<FilterError> check_segment_filter(std::string_view expression, const std::set<std::string>& defined) {
  auto syntax = parse_segment_filter(expression);
  std::vector<FilterError> errors;
  std::set<std::string> reported;
  for (const auto& use : syntax.names)
    if (!defined.contains(use.name) && reported.insert(use.name).second)
      errors.push_back({use.column, unknown_name_message(use, defined)});
  if (syntax.error) errors.push_back(std::move(*syntax.error));
  std::ranges::stable_sort(errors, {}, &FilterError::column);
  return errors;
}

}  // namespace apsis::config
