use crate::domain::limits::number_size;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// An item as the SDK reads and writes it.
pub type Item = HashMap<String, AttributeValue>;

/// A text (S) attribute.
pub fn text(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// An attribute's text (S), if it has one.
pub fn text_of<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|value| value.as_s().ok())
        .map(String::as_str)
}

/// The size DynamoDB counts for one attribute value (see
/// `domain::limits::value_size`, the same rules for JSON documents).
pub fn attribute_size(value: &AttributeValue) -> usize {
    let sum = |sizes: &mut dyn Iterator<Item = usize>| sizes.fold(0usize, usize::saturating_add);
    match value {
        AttributeValue::S(text) => text.len(),
        AttributeValue::N(number) => number_size(number),
        AttributeValue::B(bytes) => bytes.as_ref().len(),
        AttributeValue::Ss(texts) => sum(&mut texts.iter().map(String::len)),
        AttributeValue::Ns(numbers) => sum(&mut numbers.iter().map(|n| number_size(n))),
        AttributeValue::Bs(blobs) => sum(&mut blobs.iter().map(|b| b.as_ref().len())),
        AttributeValue::L(items) => sum(&mut items.iter().map(|item| 1 + attribute_size(item))) + 3,
        AttributeValue::M(members) => {
            sum(&mut members
                .iter()
                .map(|(name, member)| 1 + name.len() + attribute_size(member)))
                + 3
        }
        _ => 1,
    }
}
