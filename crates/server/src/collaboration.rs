//! `MediaCollaborationService`, the name the system design uses for sharing and recognition.
//! Those features belong to later issues; this module only reserves the names.

/// The non-monetary recognition kinds of the system design.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecognitionType {
    FeaturedCreator,
    CommunitySpotlight,
    AchievementBadge,
    SocialRecognition,
}

/// Sharing and recognition (not built yet).
#[derive(Debug, Default)]
pub struct MediaCollaborationService;
