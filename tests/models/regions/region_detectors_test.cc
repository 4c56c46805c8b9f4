#include "models/regions/region_detectors.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "models/regions/safe_crop.h"
#include "models/regions/text_detector.h"
#include "tests/support/test_env.h"
#include "tests/support/video_frames.h"

namespace vsieve::models {
namespace {

using testing::Ffmpeg;
using testing::SharedAssetsDir;
using testing::TempDir;

double IoU(const cv::Rect& a, const cv::Rect& b) {
  const double inter = (a & b).area();
  const double uni = a.area() + b.area() - inter;
  return uni > 0 ? inter / uni : 0.0;
}

std::vector<Region> OfKind(const std::vector<Region>& regions, RegionKind kind) {
  std::vector<Region> out;
  for (const Region& r : regions) {
    if (r.kind == kind) out.push_back(r);
  }
  return out;
}

std::vector<Region> Detected(RegionDetector& detector, const std::vector<media::Frame>& frames) {
  auto regions = detector.Detect(frames);
  EXPECT_TRUE(regions.ok()) << regions.status().ToString();
  return regions.ok() ? *regions : std::vector<Region>{};
}

// A linear colour ramp drifting `drift` px a second, over `span` px of X + Y/2, drawn with geq:
// lavfi's `gradients` source gives different frames from run to run even with a seed.
std::string Ramp(const std::string& size, int drift, int span = 900) {
  const std::string t = "((X+0.5*Y+" + std::to_string(drift) + "*T)/" + std::to_string(span) + ")";
  return "color=c=black:s=" + size + ":r=25,format=rgb24,geq=r='clip(20+220*" + t +
         "\\,0\\,255)':g='clip(240-200*" + t + "\\,0\\,255)':b='clip(60+180*" + t + "\\,0\\,255)'";
}

// The file of the font fontconfig matches to `pattern`, for drawtext; empty when there is none.
std::string DrawtextFont(const std::string& pattern) {
  std::string font;
  if (testing::RunProgram({"fc-match", "-f", "%{file}", pattern}, &font) != 0) return "";
  return font;
}

std::string VideoAsset(const std::string& relative) {
  return SharedAssetsDir() + "/videos/" + relative;
}

// Content that moves everywhere: a scrolling window over a large test pattern.
constexpr char kMovingSource[] = "testsrc2=s=960x540:r=25";
constexpr char kMovingCrop[] = "crop=480:270:'mod(t*160,480)':'mod(t*80,270)'";

class RegionDetectorsTest : public ::testing::Test {
 protected:
  void SetUp() override { VSIEVE_REQUIRE_FFMPEG(); }

  // Makes a 2 s clip from a lavfi graph and reads `count` frames of it.
  std::vector<media::Frame> Clip(const std::string& name, const std::vector<std::string>& args,
                                 int count = 16) {
    const std::string path = dir_.File(name);
    std::vector<std::string> full = args;
    full.insert(full.end(), {"-t", "2", "-pix_fmt", "yuv420p", path});
    EXPECT_TRUE(Ffmpeg(full)) << name;
    auto frames = testing::ReadFramesEvenly(path, count);
    EXPECT_FALSE(frames.empty()) << name;
    return frames;
  }

  TempDir dir_;
};

TEST_F(RegionDetectorsTest, LetterboxBarsAreFound) {
  auto frames = Clip("letterbox.mp4",
                     {"-f", "lavfi", "-i", "testsrc2=s=320x180:r=25", "-vf", "pad=320:240:0:30"});
  BlackBorderDetector detector;
  const auto regions = Detected(detector, frames);
  ASSERT_EQ(regions.size(), 2U);
  for (const Region& r : regions) {
    EXPECT_EQ(r.kind, RegionKind::kBlackBorder);
    EXPECT_EQ(r.label, "letterbox");
    EXPECT_TRUE(r.avoid);
  }
  EXPECT_GE(IoU(regions[0].box, cv::Rect(0, 0, 320, 30)), 0.9);
  EXPECT_GE(IoU(regions[1].box, cv::Rect(0, 210, 320, 30)), 0.9);
  EXPECT_GE(IoU(SafeCrop(cv::Size(320, 240), regions), cv::Rect(0, 30, 320, 180)), 0.9);
}

// Bars around a picture whose edge is a saturated colour (pure red has a luma of 76, below the
// content threshold): the brightest channel tells content from a dark grey bar.
TEST_F(RegionDetectorsTest, LetterboxAroundSaturatedColourIsFound) {
  auto frames = Clip("letterbox_red.mp4", {"-f", "lavfi", "-i", "rgbtestsrc=s=320x180:r=25", "-vf",
                                           "pad=320:240:0:30:0x101010"});
  BlackBorderDetector detector;
  const auto regions = Detected(detector, frames);
  ASSERT_EQ(regions.size(), 2U);
  EXPECT_GE(IoU(SafeCrop(cv::Size(320, 240), regions), cv::Rect(0, 30, 320, 180)), 0.95);
}

TEST_F(RegionDetectorsTest, PillarboxBarsAreFound) {
  auto frames = Clip("pillarbox.mp4",
                     {"-f", "lavfi", "-i", "testsrc2=s=240x240:r=25", "-vf", "pad=320:240:40:0"});
  BlackBorderDetector detector;
  const auto regions = Detected(detector, frames);
  ASSERT_EQ(regions.size(), 2U);
  EXPECT_EQ(regions[0].label, "pillarbox");
  EXPECT_GE(IoU(regions[0].box, cv::Rect(0, 0, 40, 240)), 0.9);
  EXPECT_GE(IoU(regions[1].box, cv::Rect(280, 0, 40, 240)), 0.9);
  EXPECT_GE(IoU(SafeCrop(cv::Size(320, 240), regions), cv::Rect(40, 0, 240, 240)), 0.9);
  // Black bars are not a blurred fill.
  BlurFillDetector blur;
  EXPECT_TRUE(Detected(blur, frames).empty());
}

TEST_F(RegionDetectorsTest, DarkSceneIsNotABorder) {
  auto frames = Clip("dark.mp4",
                     {"-f", "lavfi", "-i", "testsrc2=s=320x240:r=25", "-vf", "eq=brightness=-0.4"});
  BlackBorderDetector detector;
  EXPECT_TRUE(Detected(detector, frames).empty());
}

// Dark content that fades in from a black top third: no straight seam into lit picture, and no
// twin at the bottom, so it is not a letterbox (it would crop away a third of a clean frame).
TEST_F(RegionDetectorsTest, DarkTopOfASceneIsNotABorder) {
  auto frames = Clip("dark_top.mp4",
                     {"-f", "lavfi", "-i", kMovingSource, "-vf",
                      std::string(kMovingCrop) + ",geq=lum='lum(X,Y)*clip((Y-H*0.35)/(H*0.3),0,1)':"
                                                 "cb='cb(X,Y)':cr='cr(X,Y)'"});
  BlackBorderDetector detector;
  EXPECT_TRUE(Detected(detector, frames).empty());
}

TEST_F(RegionDetectorsTest, AllBlackClipHasNoBorder) {
  auto frames = Clip("black.mp4", {"-f", "lavfi", "-i", "color=c=black:s=320x240:r=25"});
  BlackBorderDetector detector;
  EXPECT_TRUE(Detected(detector, frames).empty());
  StaticOverlayDetector overlay;
  EXPECT_TRUE(Detected(overlay, frames).empty());
  BlurFillDetector blur;
  EXPECT_TRUE(Detected(blur, frames).empty());
}

TEST_F(RegionDetectorsTest, BlurredFillBesidePortraitVideo) {
  // A 180x320 portrait source, centred at full height (202 px wide, x = 219..421) over a
  // blurred, enlarged copy of itself in a 640x360 frame.
  auto frames =
      Clip("blurfill.mp4", {"-f", "lavfi", "-i", "testsrc2=s=180x320:r=25", "-filter_complex",
                            "[0]split[a][b];[a]scale=640:-2,gblur=sigma=20,crop=640:360[bg];"
                            "[b]scale=-2:360[fg];[bg][fg]overlay=(W-w)/2:0"});
  BlurFillDetector detector;
  const auto regions = Detected(detector, frames);
  ASSERT_EQ(regions.size(), 2U);
  for (const Region& r : regions) {
    EXPECT_EQ(r.kind, RegionKind::kBlurFill);
    EXPECT_EQ(r.label, "blur_fill");
  }
  EXPECT_GE(IoU(regions[0].box, cv::Rect(0, 0, 219, 360)), 0.9);
  EXPECT_GE(IoU(regions[1].box, cv::Rect(421, 0, 219, 360)), 0.9);
  EXPECT_GE(IoU(SafeCrop(cv::Size(640, 360), regions), cv::Rect(219, 0, 202, 360)), 0.9);
}

TEST_F(RegionDetectorsTest, BlurredFillAboveAndBelowLandscapeVideo) {
  auto frames =
      Clip("blurfill_v.mp4", {"-f", "lavfi", "-i", "testsrc2=s=320x180:r=25", "-filter_complex",
                              "[0]split[a][b];[a]scale=-2:640,gblur=sigma=20,crop=360:640[bg];"
                              "[b]scale=360:-2[fg];[bg][fg]overlay=0:(H-h)/2"});
  BlurFillDetector detector;
  const auto regions = Detected(detector, frames);
  ASSERT_EQ(regions.size(), 2U);
  // 360x202 picture at y = 219..421.
  EXPECT_GE(IoU(regions[0].box, cv::Rect(0, 0, 360, 219)), 0.9);
  EXPECT_GE(IoU(regions[1].box, cv::Rect(0, 421, 360, 219)), 0.9);
}

// The picture inside the fill is smooth (a drifting gradient): it holds hardly more detail than
// its blurred copy, and only the seams show where it ends.
TEST_F(RegionDetectorsTest, BlurredFillAroundASmoothPicture) {
  auto frames =
      Clip("blurfill_smooth.mp4",
           {"-f", "lavfi", "-i", Ramp("202x360", 12, 200), "-filter_complex",
            "[0]format=yuv420p,split[a][b];[a]scale=640:-2,crop=640:360,gblur=sigma=25[bg];"
            "[bg][b]overlay=219:0"});
  BlurFillDetector detector;
  const auto regions = Detected(detector, frames);
  ASSERT_EQ(regions.size(), 2U);
  EXPECT_GE(IoU(SafeCrop(cv::Size(640, 360), regions), cv::Rect(219, 0, 202, 360)), 0.9);
}

// The picture inside the fill is a plain surface with fine grain (a road, a wall, a sky through
// a phone's sensor), brightening slowly: its detail is weak, and at the seam it has the fill's
// shade, so the step from fill to picture is small in absolute terms though the picture holds
// several times the fill's detail.
TEST_F(RegionDetectorsTest, BlurredFillAroundALowContrastPicture) {
  auto frames =
      Clip("blurfill_grain.mp4",
           {"-f", "lavfi", "-i",
            "color=c=black:s=202x360:r=25,format=rgb24,"
            "geq=r='110+25*T':g='112+25*T':b='108+25*T',"
            "noise=alls=5:allf=t+u,gblur=sigma=1",
            "-filter_complex",
            "[0]format=yuv420p,split[a][b];[a]scale=640:-2,crop=640:360,gblur=sigma=25[bg];"
            "[bg][b]overlay=219:0",
            "-crf", "8"});
  BlurFillDetector detector;
  const auto regions = Detected(detector, frames);
  ASSERT_EQ(regions.size(), 2U);
  EXPECT_GE(IoU(SafeCrop(cv::Size(640, 360), regions), cv::Rect(219, 0, 202, 360)), 0.9);
}

// Fill around a picture whose edge is black over much of one side (a fractal's interior, a night
// sky): that side's fill is black too, the other is lit. Black bars are dark on both sides.
TEST_F(RegionDetectorsTest, BlurredFillWithOneBlackSide) {
  auto frames = Clip("blurfill_black_side.mp4",
                     {"-f", "lavfi", "-i", "testsrc2=s=180x320:r=25", "-filter_complex",
                      "[0]drawbox=x=110:y=60:w=70:h=200:color=black:t=fill,split[a][b];"
                      "[a]scale=640:-2,gblur=sigma=20,crop=640:360[bg];"
                      "[b]scale=-2:360[fg];[bg][fg]overlay=(W-w)/2:0"});
  BlurFillDetector detector;
  const auto regions = Detected(detector, frames);
  ASSERT_EQ(regions.size(), 2U);
  EXPECT_GE(IoU(SafeCrop(cv::Size(640, 360), regions), cv::Rect(219, 0, 202, 360)), 0.9);
}

// Smooth sides around a narrow band of detail (a sliver a quarter of the frame's height wide, made
// here as fill around a 90 px strip): no video has that shape, so the sides are the content's
// own smooth areas and the frame is not cropped to the band.
TEST_F(RegionDetectorsTest, SliverBetweenFillBandsIsNotFill) {
  auto frames =
      Clip("blurfill_sliver.mp4", {"-f", "lavfi", "-i", "testsrc2=s=90x360:r=25", "-filter_complex",
                                   "[0]split[a][b];[a]scale=640:-2,crop=640:360,gblur=sigma=20[bg];"
                                   "[bg][b]overlay=(W-w)/2:0"});
  BlurFillDetector detector;
  EXPECT_TRUE(Detected(detector, frames).empty());
}

// A still title card: plain grey margins around a title (here a block), a timecode and a
// progress bar that reaches into the margins. The bar moves the margins' mean shade, not their
// median: no fill, and no crop of a clean frame.
TEST_F(RegionDetectorsTest, TitleCardWithGraphicsInItsMarginsIsNotFill) {
  auto frames = Clip("card.mp4", {"-f", "lavfi", "-i", "color=c=0x989898:s=640x360:r=25", "-vf",
                                  "drawbox=x=170:y=80:w=300:h=45:color=black:t=fill,"
                                  "drawbox=x=290:y=200:w=60:h=24:color=black:t=fill,"
                                  "drawbox=x=128:y=268:w=384:h=20:color=0x505050:t=fill"});
  BlurFillDetector detector;
  EXPECT_TRUE(Detected(detector, frames).empty());
}

// Dark grey bars (one shade on both sides) around a busy texture are bars, not fill, whatever
// the codec's noise: a fill band beside a black one must be lit.
TEST_F(RegionDetectorsTest, GreyBarsAroundATextureAreNotFill) {
  for (const std::string colour : {"0x101010", "0x181818"}) {
    auto frames =
        Clip("grey_bars.avi", {"-f", "lavfi", "-i", "life=seed=1:s=240x240:r=25:mold=10:ratio=0.3",
                               "-vf", "pad=320:240:40:0:" + colour, "-c:v", "mpeg4", "-q:v", "3"});
    BlurFillDetector detector;
    EXPECT_TRUE(Detected(detector, frames).empty()) << colour;
  }
}

// Plain margins of one colour around graphics with two strong vertical lines (a slide) are no
// fill: fill is a blurred copy of the picture and changes shade.
TEST_F(RegionDetectorsTest, PlainMarginsAreNotFill) {
  auto frames = Clip("slide.mp4", {"-f", "lavfi", "-i", "color=c=0x303840:s=640x360:r=25", "-vf",
                                   "drawbox=x=200:y=0:w=240:h=360:color=white:t=3,"
                                   "drawbox=x=230:y=60:w=180:h=200:color=yellow@0.8:t=fill"});
  BlurFillDetector detector;
  EXPECT_TRUE(Detected(detector, frames).empty());
}

TEST_F(RegionDetectorsTest, OneSidedBlurIsNotAFill) {
  // Shallow depth of field stand-in: the left 40% is soft, the rest sharp, no symmetric seam.
  auto frames =
      Clip("soft_left.mp4", {"-f", "lavfi", "-i", "testsrc2=s=640x360:r=25", "-filter_complex",
                             "[0]split[a][b];[a]crop=256:360:0:0,gblur=sigma=12[l];"
                             "[b][l]overlay=0:0"});
  BlurFillDetector detector;
  EXPECT_TRUE(Detected(detector, frames).empty());
  auto plain = Clip("plain.mp4", {"-f", "lavfi", "-i", "testsrc2=s=640x360:r=25"});
  EXPECT_TRUE(Detected(detector, plain).empty());
}

TEST_F(RegionDetectorsTest, StaticLogoOverMovingPicture) {
  // A 72x40 logo at (396, 12), opaque and half transparent.
  const cv::Rect truth(396, 12, 72, 40);
  for (const std::string alpha : {"1.0", "0.5"}) {
    auto frames =
        Clip("logo" + alpha + ".mp4", {"-f", "lavfi", "-i", kMovingSource, "-f", "lavfi", "-i",
                                       "smptebars=s=72x40:r=25", "-filter_complex",
                                       std::string("[0]") + kMovingCrop +
                                           "[bg];[1]format=rgba,colorchannelmixer=aa=" + alpha +
                                           "[l];[bg][l]overlay=W-w-12:12:shortest=1"});
    StaticOverlayDetector detector;
    const auto regions = Detected(detector, frames);
    ASSERT_EQ(regions.size(), 1U) << "alpha " << alpha;
    EXPECT_EQ(regions[0].kind, RegionKind::kWatermark);
    EXPECT_TRUE(regions[0].avoid);
    EXPECT_GE(IoU(regions[0].box, truth), 0.8) << "alpha " << alpha;
    // The crop keeps everything left of the logo.
    EXPECT_GE(IoU(SafeCrop(cv::Size(480, 270), regions), cv::Rect(0, 0, 396, 270)), 0.9);
  }
}

// A logo over a scrolling cellular pattern: some of the pattern's cells hold still for a while,
// specks of static edges all over the frame, which must neither count as marks nor hide the
// logo.
TEST_F(RegionDetectorsTest, StaticMarkOverCellularTextureIsFound) {
  const cv::Rect truth(556, 12, 72, 40);
  for (const std::string rule : {"18", "30", "150"}) {
    auto frames = Clip(
        "cellauto_logo.mp4",
        {"-f", "lavfi", "-i", "cellauto=s=640x360:r=25:scroll=1:seed=7:rule=" + rule, "-f", "lavfi",
         "-i", "smptebars=s=72x40:r=25", "-filter_complex", "[0][1]overlay=W-w-12:12:shortest=1"});
    StaticOverlayDetector detector;
    const auto regions = Detected(detector, frames);
    ASSERT_EQ(regions.size(), 1U) << "rule " << rule;
    EXPECT_EQ(regions[0].kind, RegionKind::kWatermark);
    EXPECT_GE(IoU(regions[0].box, truth), 0.8) << "rule " << rule << ": " << regions[0].box;
  }
}

// A mark over a picture that hardly moves: a held frame zooming in slowly. Most of the picture
// changes little (its median temporal spread is below what a moving video shows), but around the
// mark it moves while the mark's edges stay put. The same picture without the mark has none.
TEST_F(RegionDetectorsTest, StaticMarkOverAMostlyStillPictureIsFound) {
  const std::string held =
      "trim=end_frame=1,loop=loop=-1:size=1,setpts=N/25/TB,"
      "zoompan=z='1.01+0.003*on':d=1:s=640x360:fps=25";
  const cv::Rect truth(536, 312, 88, 32);
  auto frames =
      Clip("still_mark.mp4", {"-f", "lavfi", "-i", "testsrc2=s=640x360:r=25", "-vf",
                              held + ",drawbox=x=536:y=312:w=88:h=32:color=white@0.6:t=fill"});
  StaticOverlayDetector detector;
  const auto regions = Detected(detector, frames);
  ASSERT_EQ(regions.size(), 1U);
  EXPECT_EQ(regions[0].kind, RegionKind::kWatermark);
  EXPECT_GE(IoU(regions[0].box, truth), 0.8) << regions[0].box;

  auto clean =
      Clip("still_clean.mp4", {"-f", "lavfi", "-i", "testsrc2=s=640x360:r=25", "-vf", held});
  EXPECT_TRUE(Detected(detector, clean).empty());
}

// A translucent plate over a busy texture that moves (a scrolling cellular automaton): the
// texture's still bits crowd the static edges, but only the plate draws four straight sides.
// The same texture without the plate has none.
TEST_F(RegionDetectorsTest, TranslucentPlateOverBusyTextureIsFound) {
  const std::string texture = "cellauto=s=640x360:r=25:rule=30:scroll=1:seed=3";
  auto frames = Clip("plate_texture.mp4", {"-f", "lavfi", "-i", texture, "-vf",
                                           "drawbox=x=532:y=20:w=88:h=36:color=yellow@0.5:t=fill"});
  StaticOverlayDetector detector;
  const auto regions = Detected(detector, frames);
  ASSERT_EQ(regions.size(), 1U);
  EXPECT_EQ(regions[0].kind, RegionKind::kWatermark);
  EXPECT_GE(IoU(regions[0].box, cv::Rect(532, 20, 88, 36)), 0.8) << regions[0].box;
  EXPECT_TRUE(Detected(detector, Clip("texture.mp4", {"-f", "lavfi", "-i", texture})).empty());
}

// A translucent plate over a smooth picture that turns slowly (a colour ramp): the plate's
// edges are the only edges in the frame and the picture around it moves a few levels only.
TEST_F(RegionDetectorsTest, TranslucentPlateOverTurningRampIsFound) {
  const std::string ramp =
      "color=c=black:s=480x270:r=25,format=gray,geq=lum='40+170*"
      "clip((X-W/2)*cos(0.6+1.5*T)/W+(Y-H/2)*sin(0.6+1.5*T)/H+0.5\\,0\\,1)'";
  auto frames = Clip("plate_ramp.mp4", {"-f", "lavfi", "-i", ramp, "-vf",
                                        "drawbox=x=16:y=224:w=72:h=28:color=white@0.5:t=fill"});
  StaticOverlayDetector detector;
  const auto regions = Detected(detector, frames);
  ASSERT_EQ(regions.size(), 1U);
  EXPECT_GE(IoU(regions[0].box, cv::Rect(16, 224, 72, 28)), 0.8) << regions[0].box;
  EXPECT_TRUE(Detected(detector, Clip("ramp.mp4", {"-f", "lavfi", "-i", ramp})).empty());
}

// A translucent plate over a held frame that zooms slowly (a fractal's still, 0.2 % a frame):
// the picture around the plate moves by a level or two only, which would not do for a mark of
// any shape, but four straight still sides do. The same zoom without the plate has none.
TEST_F(RegionDetectorsTest, TranslucentPlateOverAMostlyStillPictureIsFound) {
  const std::string held =
      "trim=start_frame=10:end_frame=11,loop=loop=-1:size=1,setpts=N/25/TB,"
      "zoompan=z='1.01+0.002*on':d=1:s=640x360:fps=25";
  const std::string source = "mandelbrot=s=640x360:r=25";
  auto frames =
      Clip("plate_still.mp4", {"-f", "lavfi", "-i", source, "-vf",
                               held + ",drawbox=x=20:y=300:w=96:h=36:color=white@0.5:t=fill"});
  StaticOverlayDetector detector;
  const auto regions = Detected(detector, frames);
  ASSERT_EQ(regions.size(), 1U);
  EXPECT_GE(IoU(regions[0].box, cv::Rect(20, 300, 96, 36)), 0.8) << regions[0].box;
  EXPECT_TRUE(
      Detected(detector, Clip("still.mp4", {"-f", "lavfi", "-i", source, "-vf", held})).empty());
}

// A mark that differs from the picture around it in colour but hardly in brightness (blue on a
// picture of the same luma) has its edges in the colour planes only.
TEST_F(RegionDetectorsTest, LogoOfThePicturesBrightnessIsFoundByItsColour) {
  auto frames =
      Clip("colour_logo.mp4", {"-f", "lavfi", "-i", kMovingSource, "-vf",
                               std::string(kMovingCrop) +
                                   ",geq=lum='128+(lum(X,Y)-128)*0.15':cb='cb(X,Y)':cr='cr(X,Y)',"
                                   "drawbox=x=24:y=16:w=80:h=40:color=0x00A0FF:t=fill"});
  StaticOverlayDetector detector;
  const auto regions = Detected(detector, frames);
  ASSERT_EQ(regions.size(), 1U);
  EXPECT_EQ(regions[0].kind, RegionKind::kWatermark);
  EXPECT_GE(IoU(regions[0].box, cv::Rect(24, 16, 80, 40)), 0.8);
}

// Flashes over a real scene that hardly moves (a flower in a light breeze): a washed-out frame
// differs from the others everywhere, which must not pass for a moving picture around the
// flower's still edges. Motion is measured on the frames of the clip's usual brightness.
TEST_F(RegionDetectorsTest, FlashesOverAStillSceneMakeNoMark) {
  VSIEVE_REQUIRE_ASSETS();
  auto frames =
      Clip("flashes.mp4", {"-i", VideoAsset("natural/flower.mp4"), "-vf",
                           "scale=640:360,eq=brightness='if(lt(mod(t\\,0.8)\\,0.16)\\,0.8\\,0)':"
                           "eval=frame"});
  StaticOverlayDetector detector;
  EXPECT_TRUE(Detected(detector, frames).empty());
}

TEST_F(RegionDetectorsTest, StillVideoHasNoOverlay) {
  auto frames = Clip("still.mp4", {"-f", "lavfi", "-i", "smptehdbars=s=480x270:r=25"});
  StaticOverlayDetector detector;
  EXPECT_TRUE(Detected(detector, frames).empty());
  BlackBorderDetector border;
  EXPECT_TRUE(Detected(border, frames).empty());
}

// Content that changes slowly keeps some edges' directions for a while (the rim of a fractal
// during a zoom, colour bands that drift): no mark, and no crop of a clean frame.
TEST_F(RegionDetectorsTest, SlowlyEvolvingContentHasNoOverlay) {
  for (const std::string& source : std::vector<std::string>{
           "mandelbrot=s=640x360:r=25:start_scale=3:end_scale=0.3",
           "mandelbrot=s=640x360:r=25:start_scale=1.5:end_scale=0.05:inner=period",
           Ramp("640x360", 4)}) {
    auto frames = Clip("slow.mp4", {"-f", "lavfi", "-i", source}, 10);
    StaticOverlayDetector detector;
    const auto regions = Detected(detector, frames);
    EXPECT_TRUE(regions.empty()) << source << ": " << regions.size() << " regions, first "
                                 << (regions.empty() ? cv::Rect() : regions.front().box);
  }
}

TEST_F(RegionDetectorsTest, MovingPictureWithoutOverlayHasNone) {
  auto frames = Clip("moving.mp4", {"-f", "lavfi", "-i", kMovingSource, "-vf", kMovingCrop});
  StaticOverlayDetector detector;
  EXPECT_TRUE(Detected(detector, frames).empty());
}

TEST_F(RegionDetectorsTest, EmptyInputGivesNoRegions) {
  BlackBorderDetector border;
  BlurFillDetector blur;
  StaticOverlayDetector overlay;
  TextRegionDetector text(nullptr);
  const std::vector<media::Frame> none;
  EXPECT_TRUE(Detected(border, none).empty());
  EXPECT_TRUE(Detected(blur, none).empty());
  EXPECT_TRUE(Detected(overlay, none).empty());
  EXPECT_TRUE(Detected(text, none).empty());
}

// ---- Text regions (need the DB model from ../shared) ------------------------------------------

class TextRegionDetectorTest : public RegionDetectorsTest {
 protected:
  static void SetUpTestSuite() {
    if (SharedAssetsDir().empty()) return;
    auto loaded = TextDetector::Load(SharedAssetsDir() +
                                     "/models/paddleocr/ch_PP-OCRv4_det_640x640_ocv46.onnx");
    if (loaded.ok()) detector_ = std::move(loaded).value().release();
  }
  static void TearDownTestSuite() {
    delete detector_;
    detector_ = nullptr;
  }
  void SetUp() override {
    RegionDetectorsTest::SetUp();
    VSIEVE_REQUIRE_ASSETS();
    ASSERT_NE(detector_, nullptr);
  }
  static TextDetector* detector_;
};

TextDetector* TextRegionDetectorTest::detector_ = nullptr;

// A channel name in a corner that never changes, over a mostly still picture: a watermark (found
// as text), avoided, and still text to the heads that read text.
TEST_F(TextRegionDetectorTest, StillTextInACornerIsAWatermark) {
  const std::string font = DrawtextFont("DejaVu Sans:bold");
  if (font.empty()) GTEST_SKIP() << "no font for drawtext";
  auto frames =
      Clip("bug.mp4", {"-f", "lavfi", "-i", "smptehdbars=s=480x270:r=25", "-vf",
                       "zoompan=z='1.02+0.001*on':d=1:s=480x270:fps=25,drawtext=fontfile=" + font +
                           ":text='NEWS 24':fontsize=22:fontcolor=white:"
                           "borderw=2:x=w-tw-14:y=12"});
  TextRegionDetector detector(detector_);
  const auto regions = Detected(detector, frames);
  const Region* mark = nullptr;
  for (const Region& r : regions) {
    if (r.kind == RegionKind::kWatermark) mark = &r;
  }
  ASSERT_NE(mark, nullptr);
  EXPECT_TRUE(mark->avoid);
  EXPECT_TRUE(IsTextRegion(*mark));
  EXPECT_GE(mark->box.x, 320);
  EXPECT_LE(mark->box.y + mark->box.height, 50);
}

// A slide held on screen repeats itself: its frames take one text pass, and its line is found as
// if each had its own. When the line changes, the frames after the change take a pass of their
// own (two 16:9 frames share one), and the changing line is a subtitle.
TEST_F(TextRegionDetectorTest, RepeatedFramesShareOneTextPass) {
  const std::string font = DrawtextFont("DejaVu Sans:bold");
  if (font.empty()) GTEST_SKIP() << "no font for drawtext";
  const std::string line = "drawtext=fontfile=" + font +
                           ":fontsize=24:fontcolor=white:borderw=2:x=(w-tw)/2:y=h-th-30:text=";
  auto still = Clip("held.mp4", {"-f", "lavfi", "-i", "smptehdbars=s=640x360:r=25", "-vf",
                                 line + "'Held slide text'"});
  TextRegionDetector detector(detector_);
  int64_t before = detector_->passes();
  const auto held = Detected(detector, still);
  EXPECT_EQ(detector_->passes() - before, 1);
  ASSERT_EQ(held.size(), 1U);
  EXPECT_EQ(held[0].label, "scene_text");  // still text centred on a still slide is the slide's
  EXPECT_GE(held[0].box.y, 270);

  auto changing = Clip("changing.mp4", {"-f", "lavfi", "-i", "smptehdbars=s=640x360:r=25", "-vf",
                                        line + "'First line':enable='lt(t,1)'," + line +
                                            "'The second, longer line':enable='gte(t,1)'"});
  before = detector_->passes();
  const auto lines = Detected(detector, changing);
  // Two distinct frames; 16:9 frames share a pass two at a time (TextDetector::PairCells).
  EXPECT_EQ(detector_->passes() - before, 1);
  ASSERT_EQ(lines.size(), 1U);
  EXPECT_EQ(lines[0].label, "subtitle");
  // The band covers the longer second line, whose frames were passed on their own.
  EXPECT_GE(lines[0].box.width, held[0].box.width);
}

// A title centred at the top of a slide whose background stays still (a talk, a screen
// recording: only an inset moves) is part of the slide, not a mark: reported, not avoided.
// Under load the detector's output varies a little: in some frames it returns a word of the title
// alone, which used to make a cluster of its own, seen in only some frames (a top caption,
// avoided). Parts of a line's cluster now join it. The next test pins a title that always comes
// as a box per word.
TEST_F(TextRegionDetectorTest, StillTitleOfASlideIsNotAMark) {
  const std::string font = DrawtextFont("DejaVu Sans:bold");
  if (font.empty()) GTEST_SKIP() << "no font for drawtext";
  auto frames =
      Clip("slide_title.mp4",
           {"-f", "lavfi", "-i", Ramp("640x360", 0), "-f", "lavfi", "-i",
            "mandelbrot=s=160x120:r=25", "-filter_complex",
            "[0]format=yuv420p,trim=end_frame=1,loop=loop=-1:size=1,setpts=N/25/TB[bg];"
            "[bg][1]overlay=40:100:shortest=1,drawtext=fontfile=" +
                font + ":text='Hello world':fontsize=32:fontcolor=black:x=(w-tw)/2:y=14"});
  TextRegionDetector detector(detector_);
  const auto regions = Detected(detector, frames);
  const Region* title = nullptr;
  for (const Region& r : regions) {
    if (r.box.y < 40 && r.box.x > 150 && r.box.x + r.box.width < 490) title = &r;
  }
  ASSERT_NE(title, nullptr);
  EXPECT_EQ(title->kind, RegionKind::kText);
  EXPECT_FALSE(title->avoid);
  EXPECT_EQ(SafeCrop(cv::Size(640, 360), regions), cv::Rect(0, 0, 640, 360));
}

// The same kind of title with wide gaps between its words, which the detector returns as a box
// per word, none of them centred alone: the line they make is centred, so each word is the
// slide's own text.
TEST_F(TextRegionDetectorTest, StillTitleInSeparateWordsIsNotAMark) {
  const std::string font = DrawtextFont("DejaVu Sans:bold");
  if (font.empty()) GTEST_SKIP() << "no font for drawtext";
  const std::string word = "drawtext=fontfile=" + font + ":fontsize=32:fontcolor=black:y=14:";
  auto frames =
      Clip("slide_words.mp4",
           {"-f", "lavfi", "-i", Ramp("640x360", 0), "-f", "lavfi", "-i",
            "mandelbrot=s=160x120:r=25", "-filter_complex",
            "[0]format=yuv420p,trim=end_frame=1,loop=loop=-1:size=1,setpts=N/25/TB[bg];"
            "[bg][1]overlay=40:100:shortest=1," +
                word + "text='Quarterly':x=w/2-tw-20," + word + "text='Review':x=w/2+20"});
  TextRegionDetector detector(detector_);
  const auto regions = Detected(detector, frames);
  int words = 0;
  for (const Region& r : regions) {
    if (r.box.y >= 40) continue;
    ++words;
    EXPECT_EQ(r.kind, RegionKind::kText) << r.label << " " << r.box;
    EXPECT_FALSE(r.avoid) << r.label << " " << r.box;
  }
  EXPECT_GE(words, 1);
  EXPECT_EQ(SafeCrop(cv::Size(640, 360), regions), cv::Rect(0, 0, 640, 360));
}

// A grey title card (the assets' example-movie): a centred title and a running timecode under
// it, over a still card. Both are the card's own text, and the card is not cropped.
TEST_F(TextRegionDetectorTest, TitleCardTextIsTheCardsOwn) {
  auto frames = testing::ReadFramesEvenly(VideoAsset("static_slideshow/example-movie.mp4"), 16);
  ASSERT_FALSE(frames.empty());
  TextRegionDetector detector(detector_);
  const auto regions = Detected(detector, frames);
  EXPECT_FALSE(regions.empty());
  for (const Region& r : regions) {
    EXPECT_FALSE(r.avoid) << r.label << " " << r.box;
  }
}

TEST_F(TextRegionDetectorTest, DrawnSubtitlesAreAvoided) {
  const std::string font = DrawtextFont("DejaVu Sans");
  if (font.empty()) GTEST_SKIP() << "no font for drawtext";
  const std::string style =
      "fontfile=" + font + ":fontsize=20:fontcolor=white:borderw=2:x=(w-tw)/2:y=h-th-16";
  auto frames = Clip("subs.mp4",
                     {"-f", "lavfi", "-i", "mandelbrot=s=480x270:r=25", "-vf",
                      "drawtext=" + style +
                          ":text='Where are you going tonight':enable='lt(t,1)',drawtext=" + style +
                          ":text='To the station, obviously':enable='gte(t,1)'"});
  TextRegionDetector detector(detector_);
  const auto regions = Detected(detector, frames);
  const Region* subtitle = nullptr;
  for (const Region& r : regions) {
    if (r.label == "subtitle") subtitle = &r;
  }
  ASSERT_NE(subtitle, nullptr);
  EXPECT_TRUE(subtitle->avoid);
  EXPECT_EQ(subtitle->kind, RegionKind::kText);
  // Both lines sit centred, bottom at y = 254; the text is ~20 px tall and ~260 px wide.
  EXPECT_GE(subtitle->box.y, 220);
  EXPECT_LE(subtitle->box.y + subtitle->box.height, 270);
  EXPECT_NEAR(subtitle->box.x + subtitle->box.width / 2.0, 240.0, 20.0);
  EXPECT_GE(subtitle->box.width, 200);
  const cv::Rect crop = SafeCrop(cv::Size(480, 270), regions);
  EXPECT_LE(crop.y + crop.height, subtitle->box.y + 1);
}

TEST_F(TextRegionDetectorTest, RealHardSubtitles) {
  auto frames = testing::ReadFramesEvenly(
      VideoAsset("text_overlay_subtitles_watermark/DERIVED_friday_hardsub.mp4"), 16);
  ASSERT_FALSE(frames.empty());
  TextRegionDetector detector(detector_);
  const auto regions = Detected(detector, frames);
  const int h = frames.front().bgr.rows;
  bool found = false;
  for (const Region& r : regions) {
    if (r.label == "subtitle" && r.box.y >= h * 0.6) found = true;
  }
  EXPECT_TRUE(found);
}

// Text that stays at one place but changes (a running counter) is a caption in the upper or
// lower part of the frame, where overlays go, and the scene's own across the middle (a label on
// something a still camera films): only the first is avoided.
TEST_F(TextRegionDetectorTest, PersistingTextIsACaptionOnlyAboveOrBelowTheMiddle) {
  const std::string font = DrawtextFont("DejaVu Sans:bold");
  if (font.empty()) GTEST_SKIP() << "no font for drawtext";
  const std::string counter = "drawtext=fontfile=" + font +
                              ":fontsize=22:fontcolor=white:borderw=2:x=16:text='%{frame_num}'";
  auto frames = Clip("counters.mp4", {"-f", "lavfi", "-i", kMovingSource, "-vf",
                                      std::string(kMovingCrop) + "," + counter + ":y=46," +
                                          counter + ":y=(h-th)/2+4"});
  TextRegionDetector detector(detector_);
  const auto regions = Detected(detector, frames);
  const Region* upper = nullptr;
  const Region* middle = nullptr;
  for (const Region& r : regions) {
    if (r.box.x > 80) continue;
    const double cy = r.box.y + r.box.height / 2.0;
    if (cy < 81) upper = &r;
    if (cy > 110 && cy < 160) middle = &r;
  }
  ASSERT_NE(upper, nullptr);
  ASSERT_NE(middle, nullptr);
  EXPECT_EQ(upper->label, "caption");
  EXPECT_TRUE(upper->avoid);
  EXPECT_EQ(middle->label, "scene_text");
  EXPECT_FALSE(middle->avoid);
}

TEST_F(TextRegionDetectorTest, RealWatermarkClip) {
  auto frames = testing::ReadFramesEvenly(
      VideoAsset("text_overlay_subtitles_watermark/DERIVED_flower_watermark.mp4"), 16);
  ASSERT_FALSE(frames.empty());
  const cv::Size size = frames.front().bgr.size();
  TextRegionDetector text(detector_);
  StaticOverlayDetector overlay;
  std::vector<Region> regions = Detected(text, frames);
  for (const Region& r : Detected(overlay, frames)) regions.push_back(r);
  // The logo sits top-right, "SAMPLE WATERMARK" bottom-right; both must be avoided.
  const cv::Rect top_right(size.width * 3 / 4, 0, size.width / 4, size.height / 3);
  const cv::Rect bottom_right(size.width / 2, size.height * 3 / 4, size.width / 2, size.height / 4);
  bool logo = false;
  bool caption = false;
  for (const Region& r : regions) {
    if (!r.avoid) continue;
    if ((r.box & top_right).area() > 0) logo = true;
    if ((r.box & bottom_right).area() > 0) caption = true;
  }
  EXPECT_TRUE(logo);
  EXPECT_TRUE(caption);
}

// ---- Real borders -----------------------------------------------------------------------------

TEST(RealBorderTest, RocketLetterbox) {
  VSIEVE_REQUIRE_ASSETS();
  auto frames =
      testing::ReadFramesEvenly(VideoAsset("letterbox_pillarbox/rocket-blackbars.mp4"), 10);
  ASSERT_FALSE(frames.empty());
  BlackBorderDetector detector;
  const auto regions = Detected(detector, frames);
  ASSERT_EQ(regions.size(), 2U);
  // 105 px bars in 480x480 (the source repo's cropdetect rounds the picture to 256 rows at 112).
  const double s = frames.front().analysis_scale;
  EXPECT_EQ(regions[0].label, "letterbox");
  EXPECT_NEAR(regions[0].box.y + regions[0].box.height, 108 * s, 6 * s);
  EXPECT_NEAR(regions[1].box.y, 372 * s, 6 * s);
  EXPECT_EQ(regions[0].box.width, frames.front().bgr.cols);
}

TEST(RealBorderTest, MovieHelloPillarbox) {
  VSIEVE_REQUIRE_ASSETS();
  auto frames = testing::ReadFramesEvenly(VideoAsset("letterbox_pillarbox/movie-hello.mp4"), 10);
  ASSERT_FALSE(frames.empty());
  BlackBorderDetector detector;
  const auto regions = Detected(detector, frames);
  ASSERT_EQ(regions.size(), 2U);
  const double s = frames.front().analysis_scale;
  const int w = frames.front().bgr.cols;
  EXPECT_EQ(regions[0].label, "pillarbox");
  EXPECT_NEAR(regions[0].box.width, 64 * s, 3);
  EXPECT_NEAR(w - regions[1].box.x, 64 * s, 3);
}

}  // namespace
}  // namespace vsieve::models
